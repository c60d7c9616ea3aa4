package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.kvm.testing.KvmAvailable;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * virtio-rng through real KVM: the rng test guest finds the device the builder attaches by default (behind the
 * implicit vsock device, so not in the first slot), and posts buffers of 1 byte, 4 KiB, 64 KiB and more, a chain of
 * three, an indirect table, chains with device-readable parts and a batch of 15 at once; each completion through
 * its interrupt, used lengths exact, bytes random-looking and different between reads, nothing written outside
 * the buffers or past 64 KiB. The VMM logs no device failure, and the entropy source's descriptor is closed with the
 * VM.
 */
class RngGuestTest {
    private static final List<String> CHECKS = List.of(
            "one_queue", "no_config_space", "no_device_features", "one_byte", "page", "two_reads", "no_repeat",
            "max_request", "over_max", "over_max_split", "multi_desc", "indirect", "readable_alone",
            "readable_then_writable", "readable_unchanged", "zero_length", "batch", "after");

    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    @Test
    void theDefaultRngServesTheGuestsRequests() throws Exception {
        GuestRun.warmUp();
        long fdsBefore = OpenFds.count();

        VmConfig config = VmBuilder.create()
                .machine(m -> m.memoryMib(64))
                .kernel(k -> k.kernelPath(TestGuests.path("rng")).replaceCmdline("jkrun.test.timeout_ms=20000"))
                .console(c -> c.disableImplicit())
                .build()
                .withTestExitPort(true);
        assertTrue(config.devices().get(0) instanceof VsockDeviceConfig, "the implicit vsock device comes first");
        assertEquals(new RngDeviceConfig(), config.devices().get(1));

        ByteArrayOutputStream log = new ByteArrayOutputStream();
        PrintStream err = System.err;
        System.setErr(new PrintStream(new TsiGuestTest.Tee(err, log), true)); // slf4j-simple writes to System.err
        GuestRun r;
        try {
            r = GuestRun.run(config, Duration.ofSeconds(90));
        } finally {
            System.setErr(err);
        }
        String out = r.output();
        String vmmLog = log.toString(StandardCharsets.UTF_8);
        System.out.println(out);
        List<Executable> checks = new ArrayList<>();
        checks.add(() -> assertEquals(OptionalInt.of(0), r.reason().exitStatus(), out + r.reason()));
        for (String c : CHECKS) {
            checks.add(() -> assertTrue(r.lines().contains("CHECK " + c + " ok"), "CHECK " + c + ": " + out));
        }
        checks.add(() -> assertEquals(List.of(), r.lines().stream().filter(l -> l.contains("FAIL")).toList()));
        checks.add(() -> assertTrue(r.lines().contains("RNG ok " + CHECKS.size()), "the guest's summary: " + out));
        checks.add(() -> assertEquals(List.of(), vmmLog.lines()
                .filter(l -> l.contains("virtio-rng") && (l.contains("WARN") || l.contains("ERROR"))).toList(),
                "the VMM logged a virtio-rng failure"));
        checks.add(() -> assertEquals(fdsBefore, OpenFds.count(), "host descriptors after the VM: " + OpenFds.list()));
        assertAll(checks);
    }
}
