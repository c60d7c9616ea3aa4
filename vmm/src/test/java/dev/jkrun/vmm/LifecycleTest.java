package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.kvm.testing.KvmAvailable;
import dev.jkrun.libc.AnonymousMapping;
import dev.jkrun.libc.FileDescriptor;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Stopping guests that will not stop by themselves, and releasing everything a VM used. */
class LifecycleTest {
    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    @ParameterizedTest
    @ValueSource(strings = {"spin", "halt"})
    void killReturnsPromptlyFromARunningGuest(String guest) throws Exception {
        try (VirtualMachine vm = VirtualMachine.create(GuestRun.config(guest, 1, 32, ""), System.err, null)) {
            vm.start();
            waitForOutput(vm, guest.toUpperCase());
            long t0 = System.nanoTime();
            vm.kill();
            Optional<StopReason> r = vm.waitForStop(Duration.ofSeconds(10));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(r.isPresent(), "stop did not complete");
            assertEquals(StopReason.Kind.KILLED, r.get().kind());
            assertTrue(ms < 5000, "kill took " + ms + " ms");
        }
    }

    @Test
    void stopOfACooperatingGuestIsAShutdownWithItsStatus() throws Exception {
        try (VirtualMachine vm = VirtualMachine.create(GuestRun.config("power_button", 1, 32, "jkrun.test.status=42"), System.err, null)) {
            vm.start();
            waitForOutput(vm, "WAITING");
            StopReason r = vm.stop(Duration.ofSeconds(20));
            assertEquals(StopReason.Kind.SHUTDOWN, r.kind(), r + " " + vm.debugOutput());
            assertEquals(java.util.OptionalInt.of(42), r.exitStatus());
            assertTrue(vm.debugOutput().contains("STOP REQUESTED"), vm.debugOutput());
        }
    }

    @Test
    void stopOfAGuestThatIgnoresItIsKilledAfterTheGrace() throws Exception {
        try (VirtualMachine vm = VirtualMachine.create(GuestRun.config("power_button", 1, 32, "jkrun.test.ignore_stop"), System.err, null)) {
            vm.start();
            waitForOutput(vm, "WAITING");
            long t0 = System.nanoTime();
            StopReason r = vm.stop(Duration.ofMillis(300));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(StopReason.Kind.KILLED, r.kind(), r.toString());
            assertTrue(r.detail().contains("did not power off"), r.detail());
            assertTrue(ms >= 300 && ms < 10_000, "stop took " + ms + " ms");
        }
    }

    @Test
    void stopOfAGuestWithNoWayToAskIsAKill() throws Exception {
        try (VirtualMachine vm = VirtualMachine.create(GuestRun.config("spin", 1, 32, "").withTestExitPort(false), System.err, null)) {
            vm.start();
            waitForOutput(vm, "SPIN");
            StopReason r = vm.stop(Duration.ofSeconds(60));
            assertEquals(StopReason.Kind.KILLED, r.kind(), r.toString());
        }
    }

    @Test
    void twentyConcurrentVmsEachStopWithTheirOwnStatus() throws Exception {
        cycle();
        awaitNoVmThreads();
        var fds = OpenFds.named();
        int ours = FileDescriptor.openCount();
        long mapped = AnonymousMapping.mappedBytes();
        List<VirtualMachine> vms = new java.util.ArrayList<>();
        try {
            for (int i = 0; i < 20; i++) {
                vms.add(VirtualMachine.create(GuestRun.config("exit_status", 1 + i % 2, 32, "jkrun.test.status=" + (100 + i)), System.err, null));
            }
            vms.parallelStream().forEach(VirtualMachine::start);
            for (int i = 0; i < 20; i++) {
                Optional<StopReason> r = vms.get(i).waitForStop(Duration.ofSeconds(120));
                assertTrue(r.isPresent(), "VM " + i + " did not stop");
                assertEquals(StopReason.Kind.SHUTDOWN, r.get().kind(), "VM " + i + ": " + r.get());
                assertEquals(java.util.OptionalInt.of(100 + i), r.get().exitStatus(), "VM " + i);
            }
        } finally {
            vms.forEach(VirtualMachine::close);
        }
        assertEquals(ours, FileDescriptor.openCount(), "jkrun file descriptors");
        assertEquals(mapped, AnonymousMapping.mappedBytes(), "guest memory mappings");
        assertEquals(fds, OpenFds.named(), "process file descriptors");
        assertEquals(List.of(), awaitNoVmThreads(), "threads of stopped VMs");
    }

    @Test
    void fiftyStartStopCyclesLeaveNothingBehind() throws Exception {
        // Warm up once so lazily created JVM/JNR threads and fds are part of the baseline.
        cycle();
        awaitNoVmThreads();
        var fds = OpenFds.named();
        int threads = Thread.activeCount();
        int ours = FileDescriptor.openCount();
        long mapped = AnonymousMapping.mappedBytes();
        for (int i = 0; i < 50; i++) {
            cycle();
        }
        assertEquals(ours, FileDescriptor.openCount(), "jkrun file descriptors");
        assertEquals(mapped, AnonymousMapping.mappedBytes(), "guest memory mappings");
        assertEquals(fds, OpenFds.named(), "process file descriptors");
        assertEquals(List.of(), awaitNoVmThreads(), "threads of stopped VMs");
        assertTrue(Thread.activeCount() <= threads, "live threads: " + Thread.activeCount() + " > " + threads);
    }

    /**
     * Guests that stop themselves race the supervisor's kick against the vCPU thread's exit. A kick left pending
     * at thread exit would kill this JVM (HotSpot restores the creation-time signal mask), so surviving many
     * such stops is the test.
     */
    @Test
    void selfStoppingGuestsNeverLeaveAKickPending() throws Exception {
        for (int i = 0; i < 40; i++) {
            GuestRun r = GuestRun.run(i % 2 == 0 ? "exit_status" : "triple_fault", 1 + i % 2, 32, "jkrun.test.status=3");
            assertTrue(r.reason().kind() == StopReason.Kind.SHUTDOWN || r.reason().kind() == StopReason.Kind.CRASH, r.reason().toString());
        }
    }

    private static void cycle() throws Exception {
        try (VirtualMachine vm = VirtualMachine.create(GuestRun.config("spin", 1, 32, ""), System.err, null)) {
            vm.start();
            waitForOutput(vm, "SPIN");
            vm.kill();
            assertEquals(StopReason.Kind.KILLED, vm.waitForStop().kind());
        }
    }

    static void waitForOutput(VirtualMachine vm, String text) throws InterruptedException {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!vm.debugOutput().contains(text) && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertTrue(vm.debugOutput().contains(text), "guest never printed " + text + ": " + vm.debugOutput());
    }


    /**
     * Names of live threads a VM started (vCPUs, supervisor, device workers), after giving them up to 2 s to finish:
     * a VM's supervisor completes its future just before its thread ends.
     */
    private static List<String> awaitNoVmThreads() throws InterruptedException {
        List<String> left = List.of();
        for (int i = 0; i < 200; i++) {
            left = Thread.getAllStackTraces().keySet().stream().map(Thread::getName)
                    .filter(n -> n.startsWith("jkrun-vm") || n.startsWith("virtio-")).sorted().toList();
            if (left.isEmpty()) {
                break;
            }
            Thread.sleep(10);
        }
        return left;
    }
}
