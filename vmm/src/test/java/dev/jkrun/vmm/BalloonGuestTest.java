package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.kvm.testing.KvmAvailable;
import dev.jkrun.memory.MmapGuestMemory;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * virtio-balloon through real KVM, paced by the host: the balloon test guest (the builder's default device) touches
 * 32 MiB of its RAM, and the resident size of the guest's RAM mapping (summed from {@code /proc/self/smaps} over the
 * mapping's address range) grows by that much; it reports the 32 MiB free and the resident size falls back by at least
 * 28 MiB; it sends report ranges and PFNs outside RAM (past it, in the MMIO hole, wrapping, straddling its end, 0xFFFFFFFF)
 * that are ignored with a canary intact; it inflates 2048 pages and deflates them; its stats buffer is held until the
 * host asks and then refilled. Each step waits for the host's next target (num_pages), which also checks the
 * config-change interrupt. The VMM logs no balloon failure.
 */
class BalloonGuestTest {
    private static final long MIB = 1 << 20;
    private static final List<String> CHECKS = List.of(
            "five_queues", "config_initial", "features", "touched", "config_interrupt", "report",
            "reported_pages_discarded", "report_past_ram", "report_mmio_hole", "report_wrapping", "report_zero_length",
            "report_straddling_ram_end", "inflate_hostile_pfns", "deflate_hostile_pfns", "canary_intact", "retouched",
            "inflated_pages_discarded", "deflated_pages_usable", "canary_intact_after_inflate", "hint", "stats_held",
            "stats_request", "canary_intact_at_end");

    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    /** Resident bytes of the host mapping {@code [start, start+size)}: the Rss of every smaps VMA overlapping it. */
    static long residentBytes(long start, long size) throws IOException {
        long end = start + size, rss = 0;
        boolean in = false;
        for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
            int dash = line.indexOf('-');
            int space = line.indexOf(' ');
            if (dash > 0 && space > dash && line.substring(0, dash).chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
                long a = Long.parseUnsignedLong(line.substring(0, dash), 16);
                long b = Long.parseUnsignedLong(line.substring(dash + 1, space), 16);
                in = Long.compareUnsigned(a, end) < 0 && Long.compareUnsigned(b, start) > 0;
            } else if (in && line.startsWith("Rss:")) {
                rss += Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        return rss;
    }

    @Test
    void reportedAndInflatedPagesLeaveTheHost() throws Exception {
        VmConfig config = VmBuilder.create()
                .machine(m -> m.memoryMib(128))
                .kernel(k -> k.kernelPath(TestGuests.path("balloon")).replaceCmdline("jkrun.test.timeout_ms=60000"))
                .console(c -> c.disableImplicit())
                .network(n -> n.none())
                .build()
                .withTestExitPort(true);
        assertEquals(new BalloonDeviceConfig(), config.devices().get(config.devices().size() - 1), "attached by default");

        ByteArrayOutputStream log = new ByteArrayOutputStream();
        PrintStream err = System.err;
        System.setErr(new PrintStream(new TsiGuestTest.Tee(err, log), true)); // slf4j-simple writes to System.err
        BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        List<Executable> checks = new ArrayList<>();
        StopReason reason;
        String out;
        try (VirtualMachine vm = VirtualMachine.create(config, err, lines::add)) {
            Balloon balloon = vm.balloon().orElseThrow();
            MmapGuestMemory mem = vm.vmm().memory();
            assertEquals(1, mem.slots().size(), "128 MiB is one region");
            long addr = mem.slots().get(0).mapping().address(), size = mem.slots().get(0).mapping().size();
            vm.start();
            await(lines, "TOUCHED");
            long touched = residentBytes(addr, size);
            balloon.setTargetPages(1);
            await(lines, "REPORTED");
            long reported = residentBytes(addr, size);
            System.out.printf("guest RAM resident: %d MiB after touching 32 MiB, %d MiB after reporting it free%n",
                    touched / MIB, reported / MIB);
            checks.add(() -> assertTrue(touched >= 32 * MIB, "resident after touching 32 MiB: " + touched));
            checks.add(() -> assertTrue(touched - reported >= 28 * MIB,
                    "resident fell by " + (touched - reported) + " after reporting 32 MiB free"));
            long reportedBytes = balloon.reportedBytes();
            checks.add(() -> assertEquals(32 * MIB, reportedBytes, "bytes reported and discarded"));
            balloon.setTargetPages(2);
            await(lines, "INFLATED");
            checks.add(() -> assertEquals(0, balloon.actualPages(), "actual after deflating"));
            long discarded = balloon.discardedBytes(), rejected = balloon.rejected();
            checks.add(() -> assertEquals(40 * MIB, discarded, "32 MiB reported + 8 MiB inflated"));
            checks.add(() -> assertTrue(rejected >= 12, "hostile PFNs rejected: " + rejected));
            Map<Integer, Long> stats = balloon.stats();
            checks.add(() -> assertEquals(Map.of(4, 0x1234L, 5, 128 * MIB), stats));
            assertTrue(balloon.requestStats(), "the guest's stats buffer is held");
            await(lines, "STATS_REFILLED");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (balloon.stats().getOrDefault(4, 0L) != 0x5678L && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            checks.add(() -> assertEquals(0x5678L, balloon.stats().get(4), "refilled stats"));
            balloon.setTargetPages(3);
            checks.add(() -> assertEquals(3, balloon.targetPages()));
            reason = vm.waitForStop(Duration.ofSeconds(90)).orElseThrow(() -> new AssertionError("guest did not stop"));
            out = vm.debugOutput();
        } finally {
            System.setErr(err);
        }
        System.out.println(out);
        String vmmLog = log.toString(StandardCharsets.UTF_8);
        List<String> outLines = out.lines().toList();
        checks.add(() -> assertEquals(OptionalInt.of(0), reason.exitStatus(), out + reason));
        for (String c : CHECKS) {
            checks.add(() -> assertTrue(outLines.contains("CHECK " + c + " ok"), "CHECK " + c + ": " + out));
        }
        checks.add(() -> assertEquals(List.of(), outLines.stream().filter(l -> l.contains("FAIL")).toList()));
        checks.add(() -> assertTrue(outLines.contains("BALLOON ok " + CHECKS.size()), "the guest's summary: " + out));
        checks.add(() -> assertEquals(List.of(), vmmLog.lines()
                .filter(l -> l.contains("virtio-balloon") && (l.contains("WARN") || l.contains("ERROR"))).toList(),
                "the VMM logged a virtio-balloon failure"));
        assertAll(checks);
    }

    private static void await(BlockingQueue<String> lines, String want) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            String l = lines.poll(100, TimeUnit.MILLISECONDS);
            if (l == null) {
                continue;
            }
            if (l.startsWith("FAIL")) {
                throw new AssertionError("the guest failed before " + want + ": " + l);
            }
            if (l.equals(want)) {
                return;
            }
        }
        throw new AssertionError("the guest did not print " + want);
    }
}
