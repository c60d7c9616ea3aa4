package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.kvm.testing.KvmAvailable;
import dev.jkrun.libc.AnonymousMapping;
import dev.jkrun.libc.FileDescriptor;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
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
        Baseline baseline = Baseline.take();
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
        baseline.assertReleased();
    }

    @Test
    void fiftyStartStopCyclesLeaveNothingBehind() throws Exception {
        Baseline baseline = Baseline.take();
        int threads = Thread.activeCount();
        for (int i = 0; i < 50; i++) {
            cycle();
        }
        baseline.assertReleased();
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

    /**
     * START_FAILED: a start() whose caller is interrupted while the vCPUs come up gives up, keeps the interrupt, and
     * the VM stops with START_FAILED and releases everything (the vCPU already started sees the stop and leaves).
     */
    @Test
    void anInterruptedStartIsStartFailedAndReleasesEverything() throws Exception {
        Baseline baseline = Baseline.take();
        try (VirtualMachine vm = VirtualMachine.create(GuestRun.config("spin", 2, 32, ""), System.err, null)) {
            Thread.currentThread().interrupt();
            vm.start();
            assertTrue(Thread.interrupted(), "the caller's interrupt is kept");
            Optional<StopReason> r = vm.waitForStop(Duration.ofSeconds(30));
            assertTrue(r.isPresent(), "did not stop");
            assertEquals(StopReason.Kind.START_FAILED, r.get().kind(), r.get().toString());
            assertEquals(1, r.get().processExitStatus());
        }
        baseline.assertReleased();
    }

    /**
     * A kill racing start() from another thread: either the VM started first and the kill stops it, or the kill came
     * first and start() refuses, naming the stop. Never vCPU threads starting on memory the kill is unmapping, which
     * would fault the guest (or, through a device, the JVM) instead of either answer.
     */
    @Test
    void aKillRacingStartEitherStopsTheVmOrRefusesTheStart() throws Exception {
        Baseline baseline = Baseline.take();
        int refused = 0;
        for (int i = 0; i < 30; i++) {
            int round = i;
            try (VirtualMachine vm = VirtualMachine.create(GuestRun.config("spin", 2, 32, ""), System.err, null)) {
                java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
                Thread killer = new Thread(() -> {
                    try {
                        go.await();
                    } catch (InterruptedException e) {
                        return;
                    }
                    for (long spin = System.nanoTime() + 20_000L * (round % 10); System.nanoTime() < spin; ) {
                        Thread.onSpinWait();   // a spread of head starts, so that both sides win some rounds
                    }
                    vm.kill();
                }, "killer");
                killer.start();
                go.countDown();
                if (round % 3 == 0) {
                    killer.join();   // the kill surely first
                }
                try {
                    vm.start();
                } catch (IllegalStateException e) {
                    assertTrue(e.getMessage().startsWith("VM stopped before it started: "), e.getMessage());
                    refused++;
                }
                killer.join();
                Optional<StopReason> r = vm.waitForStop(Duration.ofSeconds(30));
                assertTrue(r.isPresent(), "did not stop");
                assertEquals(StopReason.Kind.KILLED, r.get().kind(), r.get().toString());
            }
        }
        assertTrue(refused >= 10, "the ten rounds that kill first refuse the start: " + refused);
        baseline.assertReleased();
    }

    /**
     * INFRASTRUCTURE_ERROR: the VMM failing under a running guest, here KVM_RUN failing because the vCPU's fd became
     * something else (dup2 of /dev/null over it, found by its /proc/self/fd link), stops the VM with that reason,
     * naming the call, and releases everything.
     */
    @Test
    void aVmmFailureWhileTheGuestRunsIsAnInfrastructureError() throws Exception {
        // the test's own JNR binding first: loading JNR the first time in a JVM (run alone on JDK 22+, where jkrun
        // loads none) opens descriptors of its own for good (/dev/random, /dev/urandom), which are not the VM's
        Fds libc = jnr.ffi.LibraryLoader.create(Fds.class).load("c");
        Baseline baseline = Baseline.take();
        int nullFd = libc.open("/dev/null", 0);
        assertTrue(nullFd >= 0);
        try (VirtualMachine vm = VirtualMachine.create(GuestRun.config("spin", 1, 32, ""), System.err, null)) {
            vm.start();
            waitForOutput(vm, "SPIN");
            List<String> vcpuFds = OpenFds.named().entrySet().stream()
                    .filter(e -> e.getValue().equals("anon_inode:kvm-vcpu:0")).map(java.util.Map.Entry::getKey).toList();
            assertEquals(1, vcpuFds.size(), "this VM's one vCPU fd: " + OpenFds.named());
            int vcpuFd = Integer.parseInt(vcpuFds.get(0));
            assertEquals(vcpuFd, libc.dup2(nullFd, vcpuFd));
            vm.vcpuState(); // takes the vCPU out of KVM_RUN; its next KVM_RUN is on /dev/null
            Optional<StopReason> r = vm.waitForStop(Duration.ofSeconds(30));
            assertTrue(r.isPresent(), "did not stop");
            assertEquals(StopReason.Kind.INFRASTRUCTURE_ERROR, r.get().kind(), r.get().toString());
            assertTrue(r.get().detail().contains("KVM_RUN"), r.get().detail());
            assertEquals(1, r.get().processExitStatus());
        } finally {
            libc.close(nullFd);
        }
        baseline.assertReleased();
    }

    /** libc calls this test needs and jkrun's binding rightly does not offer. */
    public interface Fds {
        int open(String path, int flags);

        int dup2(int oldfd, int newfd);

        int close(int fd);
    }

    /**
     * What the process holds with no VM: taken after one warm-up cycle, so that lazily created JVM/JNR threads and
     * fds are part of it.
     */
    private record Baseline(Map<String, String> fds, int ours, long mapped) {
        static Baseline take() throws Exception {
            cycle();
            awaitNoVmThreads();
            return new Baseline(OpenFds.named(), FileDescriptor.openCount(), AnonymousMapping.mappedBytes());
        }

        void assertReleased() throws Exception {
            assertEquals(ours, FileDescriptor.openCount(), "jkrun file descriptors");
            assertEquals(mapped, AnonymousMapping.mappedBytes(), "guest memory mappings");
            assertEquals(fds, OpenFds.named(), "process file descriptors");
            assertEquals(List.of(), awaitNoVmThreads(), "threads of stopped VMs");
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
