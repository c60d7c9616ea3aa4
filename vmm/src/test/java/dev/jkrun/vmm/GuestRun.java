package dev.jkrun.vmm;

import dev.jkrun.guests.TestGuests;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.time.Duration;
import java.util.List;

/** Runs one test guest on real KVM through the normal build path and collects what it reported. */
record GuestRun(StopReason reason, String output, String console) {
    static VmConfig config(String guest, int cpus, long memMib, String cmdline) {
        return new VmConfig(MachineConfig.of(cpus, memMib), KernelConfig.elf(TestGuests.path(guest), cmdline),
                new ConsoleConfig.None(), true);
    }

    static GuestRun run(String guest, int cpus, long memMib, String cmdline) throws InterruptedException {
        return run(config(guest, cpus, memMib, cmdline), Duration.ofSeconds(60));
    }

    static GuestRun run(VmConfig config, Duration timeout) throws InterruptedException {
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        if (config.console() instanceof ConsoleConfig.Streams s) {
            console = null;
        }
        try (VirtualMachine vm = VirtualMachine.create(config, System.err, null)) {
            vm.start();
            StopReason r = vm.waitForStop(timeout).orElseThrow(() -> new AssertionError("guest did not stop within " + timeout));
            return new GuestRun(r, vm.debugOutput(), console == null ? "" : console.toString());
        }
    }

    List<String> lines() { return output.lines().toList(); }

    /**
     * Runs one small VM so that what the first VM of a JVM opens for good (jars, native libraries) is open before a
     * test counts this process's descriptors.
     */
    static void warmUp() throws InterruptedException {
        GuestRun warm = run("exit_status", 1, 16, "jkrun.test.status=0");
        if (warm.reason().exitStatus().orElse(-1) != 0) {
            throw new AssertionError("the warm-up guest failed: " + warm.reason() + "\n" + warm.output());
        }
    }

    static ConsoleConfig streams(InputStream in, ByteArrayOutputStream out) { return new ConsoleConfig.Streams(in, out); }
}
