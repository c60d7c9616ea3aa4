package dev.jkrun.kvm;

import dev.jkrun.hypervisor.VcpuExit;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.kvm.TestGuest.Mode;
import dev.jkrun.kvm.testing.KvmAvailable;
import dev.jkrun.libc.AnonymousMapping;
import dev.jkrun.libc.EventFd;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.ThreadKick;
import dev.jkrun.memory.GuestAddress;
import java.time.Duration;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Integration tests on the real /dev/kvm (skipped when it is missing; failing under CI=true). */
class KvmTest {
    /** mov al, 0x42; out 0x10, al; in al, 0x11; out 0x12, al; hlt (the same bytes in 16- and 64-bit mode). */
    private static final byte[] PORT_IO = bytes(0xB0, 0x42, 0xE6, 0x10, 0xE4, 0x11, 0xE6, 0x12, 0xF4);
    /** jmp $ */
    private static final byte[] SPIN = bytes(0xEB, 0xFE);

    private int openFds;
    private long mapped;

    @BeforeEach
    void setUp() {
        KvmAvailable.assumeKvm();
        openFds = FileDescriptor.openCount();
        mapped = AnonymousMapping.mappedBytes();
    }

    @AfterEach
    void noLeaks() {
        assertEquals(openFds, FileDescriptor.openCount(), "file descriptors leaked");
        assertEquals(mapped, AnonymousMapping.mappedBytes(), "mappings leaked");
    }

    @Test
    void systemQueries() {
        try (Kvm kvm = Kvm.open()) {
            assertEquals(12, kvm.apiVersion());
            kvm.requireCapabilities();
            assertTrue(kvm.checkExtension(KvmCap.NR_MEMSLOTS) > 0);
            assertTrue(kvm.checkExtension(KvmCap.IMMEDIATE_EXIT) > 0);
            assertTrue(kvm.vcpuMmapSize() >= 4096);
            List<CpuidEntry> cpuid = kvm.supportedCpuid();
            assertFalse(cpuid.isEmpty());
            assertTrue(cpuid.stream().anyMatch(e -> e.function() == 0), "leaf 0 missing: " + cpuid);
            assertFalse(kvm.msrIndexList().isEmpty());
            assertNotNull(Kvm.hostVirtualization());
            int max = kvm.maxVcpus();
            assertTrue(max >= 1 && max >= Math.min(4, kvm.checkExtension(KvmCap.NR_VCPUS)), "max vCPUs " + max);
        }
    }

    @Test
    void missingDeviceIsAClearError() {
        var e = assertThrows(KvmUnavailableException.class, () -> Kvm.open("/dev/no-such-kvm"));
        assertTrue(e.getMessage().startsWith("/dev/no-such-kvm is missing"), e.getMessage());
    }

    @Test
    void vmSetup() {
        try (Kvm kvm = Kvm.open(); Vm vm = kvm.createVm(); AnonymousMapping ram = AnonymousMapping.map(1 << 20)) {
            vm.setTssAddress(0xFFFB_D000L);
            vm.setIdentityMapAddress(0xFFFB_C000L);
            vm.createIrqchip();
            vm.createPit2();
            vm.setUserMemoryRegion(0, GuestAddress.of(0), ram);
            vm.removeUserMemoryRegion(0);
            vm.setUserMemoryRegion(0, GuestAddress.of(0x10_0000), ram);
            vm.irqLine(4, true);
            vm.irqLine(4, false);
            try (EventFd irq = new EventFd()) {
                vm.registerIrqfd(irq, 5);
                irq.signal();
                vm.unregisterIrqfd(irq, 5);
            }
            try (Vcpu vcpu = vm.createVcpu(0)) {
                assertEquals(0, vcpu.id());
                var dup = assertThrows(NativeCallException.class, () -> vm.createVcpu(0));
                assertTrue(dup.getMessage().startsWith("KVM_CREATE_VCPU failed: EEXIST"), dup.getMessage());
            }
            vm.removeUserMemoryRegion(0);
        }
    }

    @Test
    void registerRoundTrips() {
        try (TestGuest g = new TestGuest(Mode.REAL, true, SPIN)) {
            Vcpu vcpu = g.vcpu;
            Regs r = vcpu.getRegs();
            r.rax = 0x1122334455667788L;
            r.r15 = -1;
            r.rsp = 0x8FF0;
            vcpu.setRegs(r);
            Regs back = vcpu.getRegs();
            assertEquals(0x1122334455667788L, back.rax);
            assertEquals(-1L, back.r15);
            assertEquals(TestGuest.CODE, back.rip);

            Sregs s = vcpu.getSregs();
            assertEquals(0x60000010L, s.cr0 & 0xFFFF_FFFFL, "reset CR0");
            s.cr2 = 0xABCD000L;
            s.gdt.base = 0x500;
            s.gdt.limit = 31;
            vcpu.setSregs(s);
            Sregs sb = vcpu.getSregs();
            assertEquals(0xABCD000L, sb.cr2);
            assertEquals(0x500, sb.gdt.base);
            assertEquals(31, sb.gdt.limit);
            assertEquals(0, sb.cs.selector);

            Fpu f = new Fpu();
            f.fcw = 0x37F;
            f.mxcsr = 0x1F80;
            vcpu.setFpu(f);
            Fpu fb = vcpu.getFpu();
            assertEquals(0x37F, fb.fcw);
            if (Kvm.hostVirtualization() != HostVirtualization.KVM_PVM) {
                assertEquals(0x1F80, fb.mxcsr); // kvm-pvm keeps no SSE state: MXCSR always reads back 0
            }

            vcpu.setCpuid(g.kvm.supportedCpuid());

            vcpu.setMsrs(List.of(new MsrEntry(0x174, 0x10), new MsrEntry(0x175, 0x8FF0))); // SYSENTER_CS/ESP
            List<MsrEntry> msrs = vcpu.getMsrs(0x174, 0x175);
            assertEquals(List.of(new MsrEntry(0x174, 0x10), new MsrEntry(0x175, 0x8FF0)), msrs);
            var bad = assertThrows(KvmException.class,
                    () -> vcpu.setMsrs(List.of(new MsrEntry(0x174, 0), new MsrEntry(0x4B564DFF, 1))));
            assertTrue(bad.getMessage().contains("0x4b564dff"), bad.getMessage());

            LapicState lapic = vcpu.getLapic();
            int lvt0 = lapic.register(0x350);
            lapic.setRegister(0x350, (lvt0 & ~0x700) | (7 << 8)); // ExtINT, as libkrun
            vcpu.setLapic(lapic);
            assertEquals(7, (vcpu.getLapic().register(0x350) >> 8) & 7);

            assertEquals(0, vcpu.getMpState()); // RUNNABLE (the BSP)
        }
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void portIoRoundTrip(Mode mode) {
        try (TestGuest g = new TestGuest(mode, false, PORT_IO)) {
            VcpuExit e = g.vcpu.run();
            var out = assertInstanceOf(VcpuExit.IoOut.class, e);
            assertEquals(0x10, out.port());
            assertEquals(1, out.size());
            assertEquals(1, out.count());
            assertArrayEquals(bytes(0x42), out.data());

            var in = assertInstanceOf(VcpuExit.IoIn.class, g.vcpu.run());
            assertEquals(new VcpuExit.IoIn(0x11, 1, 1), in);
            g.vcpu.completeRead(bytes(0x99));

            var out2 = assertInstanceOf(VcpuExit.IoOut.class, g.vcpu.run());
            assertEquals(0x12, out2.port());
            assertArrayEquals(bytes(0x99), out2.data());

            assertInstanceOf(VcpuExit.Hlt.class, g.vcpu.run());
            assertEquals(TestGuest.CODE + PORT_IO.length, g.vcpu.getRegs().rip);
            assertThrows(IllegalStateException.class, () -> g.vcpu.completeRead(bytes(1)));
        }
    }

    @Test
    void repOutsCarriesAllBytes() {
        // mov si, 0x2000; mov cx, 3; mov dx, 0x3f8; rep outsb; hlt (real mode)
        byte[] code = bytes(0xBE, 0x00, 0x20, 0xB9, 0x03, 0x00, 0xBA, 0xF8, 0x03, 0xF3, 0x6E, 0xF4);
        try (TestGuest g = new TestGuest(Mode.REAL, false, code)) {
            g.mem.put(0x2000, bytes('a', 'b', 'c'), 0, 3);
            StringBuilder seen = new StringBuilder();
            VcpuExit e;
            while ((e = g.vcpu.run()) instanceof VcpuExit.IoOut out) {
                assertEquals(0x3F8, out.port());
                assertEquals(out.size() * out.count(), out.data().length);
                seen.append(new String(out.data()));
            }
            assertInstanceOf(VcpuExit.Hlt.class, e);
            assertEquals("abc", seen.toString());
        }
    }

    @Test
    void mmioWriteAndReadOutsideRam() {
        // mov ebx, 0xd0000000; mov dword [rbx], 0x12345678; mov eax, [rbx]; out 0x10, eax; hlt (64-bit)
        byte[] code = bytes(0xBB, 0x00, 0x00, 0x00, 0xD0, 0xC7, 0x03, 0x78, 0x56, 0x34, 0x12, 0x8B, 0x03,
                0xE7, 0x10, 0xF4);
        try (TestGuest g = new TestGuest(Mode.LONG, false, code)) {
            var w = assertInstanceOf(VcpuExit.MmioWrite.class, g.vcpu.run());
            assertEquals(0xD000_0000L, w.address());
            assertArrayEquals(bytes(0x78, 0x56, 0x34, 0x12), w.data());

            var r = assertInstanceOf(VcpuExit.MmioRead.class, g.vcpu.run());
            assertEquals(new VcpuExit.MmioRead(0xD000_0000L, 4), r);
            g.vcpu.completeRead(bytes(0xEF, 0xBE, 0xAD, 0xDE));

            var out = assertInstanceOf(VcpuExit.IoOut.class, g.vcpu.run());
            assertEquals(4, out.size());
            assertArrayEquals(bytes(0xEF, 0xBE, 0xAD, 0xDE), out.data());
            assertInstanceOf(VcpuExit.Hlt.class, g.vcpu.run());
        }
    }

    @Test
    void ioeventfdSignalsWithoutExiting() {
        // mov dx, 0x510; mov al, 7; out dx, al; mov al, 8; out dx, al; hlt (real mode)
        byte[] code = bytes(0xBA, 0x10, 0x05, 0xB0, 0x07, 0xEE, 0xB0, 0x08, 0xEE, 0xF4);
        try (TestGuest g = new TestGuest(Mode.REAL, false, code); EventFd doorbell = new EventFd()) {
            g.vm.registerIoeventfd(doorbell, IoEventAddress.PIO, 0x510, 1, OptionalLong.of(7));
            // The write of 7 matches and stays in the kernel; the write of 8 does not and exits.
            var out = assertInstanceOf(VcpuExit.IoOut.class, g.vcpu.run());
            assertEquals(0x510, out.port());
            assertArrayEquals(bytes(8), out.data());
            assertEquals(1, assertTimeoutPreemptively(Duration.ofSeconds(5), doorbell::await));
            assertInstanceOf(VcpuExit.Hlt.class, g.vcpu.run());
            g.vm.unregisterIoeventfd(doorbell, IoEventAddress.PIO, 0x510, 1, OptionalLong.of(7));
            assertThrows(IllegalArgumentException.class,
                    () -> g.vm.registerIoeventfd(doorbell, IoEventAddress.PIO, 0x510, 3, OptionalLong.empty()));
        }
    }

    @Test
    void mmioIoeventfdRegisters() {
        try (TestGuest g = new TestGuest(Mode.LONG, false, SPIN); EventFd doorbell = new EventFd()) {
            g.vm.registerIoeventfd(doorbell, IoEventAddress.MMIO, 0xD000_0050L, 4, OptionalLong.empty());
            g.vm.unregisterIoeventfd(doorbell, IoEventAddress.MMIO, 0xD000_0050L, 4, OptionalLong.empty());
        }
    }

    @Test
    void immediateExitReturnsInterruptedAndClears() {
        try (TestGuest g = new TestGuest(Mode.REAL, false, PORT_IO)) {
            g.vcpu.setImmediateExit(true);
            assertInstanceOf(VcpuExit.Interrupted.class, g.vcpu.run());
            assertInstanceOf(VcpuExit.IoOut.class, g.vcpu.run()); // cleared: the guest runs again
        }
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void kickInterruptsASpinningGuest(Mode mode) throws Exception {
        try (TestGuest g = new TestGuest(mode, false, SPIN)) {
            assertEquals(VcpuExit.Interrupted.class, runAndKick(g.vcpu));
        }
    }

    /** With the in-kernel irqchip, HLT (IF=0) parks the vCPU in the kernel: no exit until a kick. */
    @Test
    void kickInterruptsAHaltedVcpuWithIrqchip() throws Exception {
        try (TestGuest g = new TestGuest(Mode.REAL, true, bytes(0xF4))) {
            assertEquals(VcpuExit.Interrupted.class, runAndKick(g.vcpu));
        }
    }

    /**
     * With the in-kernel irqchip, an edge on an unmasked PIC line (KVM_IRQ_LINE) wakes a guest halted with IF=1
     * and runs its handler: here the guest programs the in-kernel 8259 (no exits), and its IRQ4 handler OUTs.
     */
    @Test
    void irqLineWakesAHaltedGuestThroughTheInKernelPic() throws Exception {
        byte[] code = bytes(
                0xB0, 0x11, 0xE6, 0x20,  // ICW1: edge, cascade, ICW4 follows
                0xB0, 0x20, 0xE6, 0x21,  // ICW2: vectors 0x20..0x27
                0xB0, 0x04, 0xE6, 0x21,  // ICW3: slave on IRQ2
                0xB0, 0x01, 0xE6, 0x21,  // ICW4: 8086 mode
                0xB0, 0xEF, 0xE6, 0x21,  // OCW1: unmask IRQ4 only
                0xFB, 0xF4, 0xEB, 0xFD); // sti; hlt; jmp hlt
        try (TestGuest g = new TestGuest(Mode.REAL, true, code)) {
            g.mem.put(0x1100, bytes(0xB0, 0x77, 0xE6, 0x13, 0xF4), 0, 5); // mov al, 0x77; out 0x13, al; hlt
            g.mem.putInt(0x24 * 4, 0x0000_1100);                             // IVT[0x24] = 0000:1100
            Regs r = g.vcpu.getRegs();
            r.rsp = 0x8000;
            g.vcpu.setRegs(r);
            CompletableFuture<VcpuExit> exit = CompletableFuture.supplyAsync(g.vcpu::run, runnable -> {
                Thread t = new Thread(runnable, "vcpu-irq");
                t.setDaemon(true);
                t.start();
            });
            Thread.sleep(300); // the guest reaches hlt and parks in the kernel
            assertFalse(exit.isDone(), "HLT with the in-kernel irqchip must not exit: " + exit.getNow(null));
            g.vm.irqLine(4, true);
            g.vm.irqLine(4, false);
            var out = assertInstanceOf(VcpuExit.IoOut.class, exit.get(10, TimeUnit.SECONDS));
            assertEquals(0x13, out.port());
            assertArrayEquals(bytes(0x77), out.data());
        }
    }

    @Test
    void emulationFailureCarriesInstructionBytes() {
        // int3 in 64-bit mode with an empty IDT: hardware KVM triple-faults (Shutdown); kvm-pvm's emulator stops.
        try (TestGuest g = new TestGuest(Mode.LONG, false, bytes(0xCC, 0xF4))) {
            VcpuExit e = g.vcpu.run();
            System.out.println("int3 in long mode -> " + e);
            if (e instanceof VcpuExit.InternalError ie && ie.suberror() == VcpuExit.InternalError.EMULATION
                    && ie.instructionBytes().length > 0) {
                assertEquals((byte) 0xCC, ie.instructionBytes()[0]);
            } else {
                assertTrue(e instanceof VcpuExit.Shutdown || e instanceof VcpuExit.InternalError, e.toString());
            }
        }
    }

    /**
     * Runs {@code vcpu} on a fresh platform thread set up like a jkrun vCPU thread (kick signal blocked, unblocked
     * only inside KVM_RUN), kicks it from this thread, and returns the exit's class. The pending kick must be
     * drained afterwards.
     */
    private static Class<?> runAndKick(Vcpu vcpu) throws Exception {
        CompletableFuture<ThreadKick.NativeThread> started = new CompletableFuture<>();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        CompletableFuture<Class<?>> result = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                ThreadKick.blockOnCurrentThread();
                vcpu.setSignalMask(ThreadKick.maskWithoutKick());
                started.complete(ThreadKick.current());
                VcpuExit e = vcpu.run();
                boolean drained = ThreadKick.drain();
                if (!drained) {
                    throw new AssertionError("the kick was not left pending for drain()");
                }
                assertFalse(ThreadKick.drain());
                result.complete(e.getClass());
            } catch (Throwable e) {
                failure.set(e);
                started.completeExceptionally(e);
                result.completeExceptionally(e);
            }
        }, "vcpu-test");
        t.setDaemon(true);
        t.start();
        ThreadKick.NativeThread thread = started.get(10, TimeUnit.SECONDS);
        Thread.sleep(200); // let it enter the guest
        assertTrue(t.isAlive(), "the vCPU thread left KVM_RUN before the kick");
        long kickedAt = System.nanoTime();
        ThreadKick.kick(thread);
        Class<?> exit = result.get(10, TimeUnit.SECONDS);
        long micros = (System.nanoTime() - kickedAt) / 1000;
        System.out.println("kick -> " + exit.getSimpleName() + " after " + micros + " us");
        t.join(5000);
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
        return exit;
    }

    private static byte[] bytes(int... values) {
        byte[] b = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            b[i] = (byte) values[i];
        }
        return b;
    }
}
