package dev.jkrun.hvf;

import static dev.jkrun.hvf.testing.FakeHvf.dataAbort;
import static dev.jkrun.hvf.testing.FakeHvf.exception;
import static dev.jkrun.hvf.testing.FakeHvf.hvc;
import static dev.jkrun.hvf.testing.FakeHvf.inspect;
import static dev.jkrun.hvf.testing.FakeHvf.reason;
import static dev.jkrun.hvf.testing.FakeHvf.smc;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.arch.aarch64.Layout;
import dev.jkrun.hvf.testing.FakeHvf;
import dev.jkrun.hypervisor.Arm64Registers;
import dev.jkrun.hypervisor.Arm64Vm;
import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.hypervisor.VcpuExit;
import dev.jkrun.libc.AnonymousMapping;
import dev.jkrun.memory.GuestAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The HVF vCPU loop against a framework that replays exits ({@link FakeHvf}). */
@Timeout(20)
class HvfVcpuTest {
    static final long ENTRY = 0x8000_0000L, FDT = 0x8020_0000L, RAM = 0x8000_0000L;
    static final int PC = 31, CPSR = 34;
    final FakeHvf fake = new FakeHvf();
    final List<AutoCloseable> resources = new ArrayList<>();
    HvfVm vm;
    final List<HvfVcpu> vcpus = new ArrayList<>();

    /** A VM with {@code n} vCPUs, 4 MiB of RAM at 2 GiB and the GIC, as the aarch64 platform sets it up. */
    HvfVcpu boot(int n) {
        vm = Hvf.over(fake).createVm();
        AnonymousMapping ram = AnonymousMapping.map(4 << 20);
        resources.add(ram);
        vm.mapMemory(0, GuestAddress.of(RAM), ram);
        assertEquals(Arm64Vm.Gic.V3, vm.createGic(n, placement(n), resources));
        for (int i = 0; i < n; i++) {
            HvfVcpu v = vm.createVcpu(i);
            vm.initVcpu(v, i, ENTRY, FDT);
            vcpus.add(v);
        }
        vm.vcpusCreated(List.copyOf(vcpus));
        return vcpus.get(0);
    }

    static Arm64Vm.GicPlacement placement(int n) {
        return new Arm64Vm.GicPlacement(Layout.GIC_DIST, Layout.GIC_DIST_SIZE, Layout.gicRedistributors(n),
                Layout.GIC_REDIST_SIZE_PER_CPU, Layout.GIC_V2_CPU, Layout.GIC_NR_IRQS);
    }

    @AfterEach
    void close() throws Exception {
        for (HvfVcpu v : vcpus) {
            v.threadEnding();
        }
        if (vm != null) {
            vm.close();
        }
        for (AutoCloseable r : resources) {
            r.close();
        }
    }

    @Test
    void bootVcpuStartsAtTheEntryWithTheDeviceTreeInX0() {
        HvfVcpu v = boot(1);
        fake.script(0, inspect(s -> {
            assertEquals(ENTRY, s.regs[PC]);
            assertEquals(FDT, s.regs[0]);
            assertEquals(0, s.regs[1] | s.regs[2] | s.regs[3]);
            assertEquals(0x3C5, s.regs[CPSR]); // EL1h, DAIF masked
            assertEquals(0L, s.mpidr());
        }, exception(0xF200_0000L, 0))); // then a BRK: a stop reason with the syndrome
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, v.enter());
        VcpuExit.UnhandledException u = assertInstanceOf(VcpuExit.UnhandledException.class, v.lastExit());
        assertEquals(0xF200_0000L, u.syndrome());
    }

    @Test
    void mmioWriteCarriesTheRegistersLowBytesAndMovesPcOn() {
        HvfVcpu v = boot(1);
        fake.script(0,
                dataAbort(0x9381_0047L, 0x0A01_0050L, 1, 0xDEAD_BEEF_0000_0003L), // str w1, [x0]
                dataAbort(0x9301_0047L, 0x0A00_1000L, 1, 0x1_2345L), // strb w1
                dataAbort(0x93C3_8047L, 0x0A01_0100L, 3, 0x0102_0304_0506_0708L), // str x3
                dataAbort(0x939F_0047L, 0x0A01_0070L), // str wzr, [x0]: zero
                inspect(s -> assertEquals(ENTRY + 16, s.regs[PC]), exception(0xF200_0000L, 0)));
        assertEquals(Hypervisor.Vcpu.EXIT_MMIO_WRITE, v.enter());
        assertEquals(0x0A01_0050L, v.mmioAddress());
        assertEquals(4, v.dataLength());
        byte[] b = new byte[4];
        v.exitData(0, b);
        assertArrayEquals(new byte[] {3, 0, 0, 0}, b);

        assertEquals(Hypervisor.Vcpu.EXIT_MMIO_WRITE, v.enter());
        assertEquals(1, v.dataLength());
        b = new byte[1];
        v.exitData(0, b);
        assertArrayEquals(new byte[] {0x45}, b);

        assertEquals(Hypervisor.Vcpu.EXIT_MMIO_WRITE, v.enter());
        b = new byte[8];
        v.exitData(0, b);
        assertArrayEquals(new byte[] {8, 7, 6, 5, 4, 3, 2, 1}, b);
        assertEquals("MmioWrite[address=0xa010100, data=0807060504030201]", v.lastExit().toString());

        assertEquals(Hypervisor.Vcpu.EXIT_MMIO_WRITE, v.enter());
        b = new byte[4];
        v.exitData(0, b);
        assertArrayEquals(new byte[4], b);
        assertThrows(IndexOutOfBoundsException.class, () -> v.exitData(1, new byte[4]));

        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, v.enter()); // PC moved past all four stores
    }

    @ParameterizedTest(name = "{0} of {2}")
    @CsvSource({
            "'ldrb w1',  0x93010007, 1, 0xFF,       0xFF",
            "'ldrh w5',  0x93450007, 5, 0xBEEF,     0xBEEF",
            "'ldr x8',   0x93C88007, 8, 0x8000000000000001, 0x8000000000000001",
            "'ldrsb x2', 0x93228007, 2, 0x80,       0xFFFFFFFFFFFFFF80",
            "'ldrsh w3', 0x93630007, 3, 0x8001,     0xFFFF8001",
            "'ldrsw x4', 0x93A48007, 4, 0x80000000, 0xFFFFFFFF80000000",
    })
    void mmioReadLandsInTheRegisterExtendedAsTheSyndromeSays(String insn, long esr, int rt, String device, String expected) {
        HvfVcpu v = boot(1);
        long value = Long.parseUnsignedLong(device.substring(2), 16);
        long want = Long.parseUnsignedLong(expected.substring(2), 16);
        fake.script(0, dataAbort(esr, 0x0A01_0000L, rt, 0x5555_5555_5555_5555L),
                inspect(s -> {
                    assertEquals(want, s.regs[rt], insn);
                    assertEquals(ENTRY + 4, s.regs[PC]);
                }, exception(0xF200_0000L, 0)));
        assertEquals(Hypervisor.Vcpu.EXIT_MMIO_READ, v.enter());
        assertEquals(0x0A01_0000L, v.mmioAddress());
        int len = v.dataLength();
        assertEquals(new VcpuExit.MmioRead(0x0A01_0000L, len), v.lastExit());
        byte[] b = new byte[len];
        for (int i = 0; i < len; i++) {
            b[i] = (byte) (value >>> (8 * i));
        }
        v.completeRead(0, b);
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, v.enter());
    }

    @Test
    void aReadIntoXzrWritesNoRegister() {
        HvfVcpu v = boot(1);
        fake.script(0, dataAbort(0x939F_0007L, 0x0A01_0000L), // ldr wzr, [x0]
                inspect(s -> assertEquals(ENTRY + 4, s.regs[PC]), exception(0xF200_0000L, 0)));
        assertEquals(Hypervisor.Vcpu.EXIT_MMIO_READ, v.enter());
        v.completeRead(0, new byte[] {1, 2, 3, 4});
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, v.enter());
        assertEquals(FDT, fake.vcpu(0).regs[0]); // X0 (SRT 0 would be X0) still holds what it held
    }

    @ParameterizedTest(name = "ESR {0}")
    @CsvSource({"0x92000007", "0x92000047", "0x93810087", "0x93810247"}) // ldp, stp, S1PTW, external abort
    void abortsWithoutASyndromeStopTheGuestNamingTheAddress(String syndrome) {
        long esr = Long.decode(syndrome);
        HvfVcpu v = boot(1);
        fake.script(0, dataAbort(esr, 0x0BAD_0000L));
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, v.enter());
        VcpuExit.DataAbortWithoutSyndrome d = assertInstanceOf(VcpuExit.DataAbortWithoutSyndrome.class, v.lastExit());
        assertEquals(0x0BAD_0000L, d.address());
        assertEquals(esr & 0x1FF_FFFF, d.esrIss());
    }

    @Test
    void cacheMaintenanceOnDeviceMemoryIsSkipped() {
        HvfVcpu v = boot(1);
        fake.script(0, dataAbort(0x9200_0147L, 0x0A01_0000L), // dc civac
                inspect(s -> assertEquals(ENTRY + 4, s.regs[PC]), exception(0xF200_0000L, 0)));
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, v.enter());
        assertInstanceOf(VcpuExit.UnhandledException.class, v.lastExit());
    }

    /** Runs {@code v}'s first enter() on a thread of its own (a secondary waits there, powered off). */
    static CompletableFuture<Integer> onItsThread(HvfVcpu v) {
        CompletableFuture<Integer> f = new CompletableFuture<>();
        Thread t = new Thread(() -> { // the future completes once the vCPU is destroyed, as a VcpuThread ends
            int kind;
            try {
                kind = v.enter();
            } catch (Throwable e) {
                v.threadEnding();
                f.completeExceptionally(e);
                return;
            }
            v.threadEnding();
            f.complete(kind);
        }, "vcpu" + v.id());
        t.start();
        return f;
    }

    @Test
    void theBootVcpuWaitsUntilEveryVcpuExists() throws Exception {
        HvfVcpu v = boot(2);
        fake.script(0, exception(0xF200_0000L, 0));
        CompletableFuture<Integer> boot = onItsThread(v);
        Thread.sleep(50);
        assertFalse(boot.isDone()); // vCPU 1 has not been created on its thread yet: the topology is not final
        CompletableFuture<Integer> second = onItsThread(vcpus.get(1));
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, (int) boot.get(5, TimeUnit.SECONDS));
        vcpus.get(1).requestExit();
        assertEquals(Hypervisor.Vcpu.EXIT_INTERRUPTED, (int) second.get(5, TimeUnit.SECONDS));
    }

    @Test
    void psciCallsAreAnsweredInX0() throws Exception {
        HvfVcpu v = boot(2);
        CompletableFuture<Integer> second = onItsThread(vcpus.get(1));
        List<Long> answers = new ArrayList<>();
        FakeHvf.Exit record = exception(0xF200_0000L, 0);
        fake.script(0,
                hvc(0x8400_0000L, 0, 0, 0), // PSCI_VERSION
                inspect(s -> answers.add(s.regs[0]), hvc(0x8400_0006L, 0, 0, 0)), // MIGRATE_INFO_TYPE
                inspect(s -> answers.add(s.regs[0]), hvc(0x8400_000AL, 0xC400_0003L, 0, 0)), // FEATURES(CPU_ON_64)
                inspect(s -> answers.add(s.regs[0]), hvc(0xC400_0003L, 0, ENTRY, 0)), // CPU_ON of itself
                inspect(s -> answers.add(s.regs[0]), hvc(0xC400_0003L, 0x99, ENTRY, 0)), // no such CPU
                inspect(s -> answers.add(s.regs[0]), hvc(0xC400_0003L, 1, 0x1000, 0)), // entry outside RAM
                inspect(s -> answers.add(s.regs[0]), hvc(0xC400_0003L, 1, ENTRY + 2, 0)), // misaligned entry
                inspect(s -> answers.add(s.regs[0]), hvc(0xC400_0004L, 1, 0, 0)), // AFFINITY_INFO(1): off
                inspect(s -> answers.add(s.regs[0]), hvc(0x8400_00F0L, 0, 0, 0)), // made up
                inspect(s -> answers.add(s.regs[0]), smc(0x8400_0000L, 0, 0, 0)), // over SMC
                inspect(s -> {
                    answers.add(s.regs[0]);
                    assertEquals(ENTRY + 4 * 9 + 4, s.regs[PC]); // HVCs left PC past them, the SMC was stepped over
                }, record));
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, v.enter());
        assertEquals(List.of(0x10000L, 2L, 0L, -4L, -2L, -9L, -9L, 1L, -1L, 0x10000L), answers);
        vcpus.get(1).requestExit();
        assertEquals(Hypervisor.Vcpu.EXIT_INTERRUPTED, (int) second.get(5, TimeUnit.SECONDS));
    }

    @Test
    void systemOffAndResetAreSystemEvents() {
        HvfVcpu v = boot(1);
        fake.script(0, hvc(0x8400_0009L, 0, 0, 0));
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, v.enter());
        assertEquals(VcpuExit.SystemEvent.RESET, assertInstanceOf(VcpuExit.SystemEvent.class, v.lastExit()).type());
        fake.script(0, hvc(0x8400_0008L, 0, 0, 0));
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, v.enter());
        assertEquals(VcpuExit.SystemEvent.SHUTDOWN, assertInstanceOf(VcpuExit.SystemEvent.class, v.lastExit()).type());
    }

    @Test
    void cpuOnStartsASecondaryOnItsOwnThreadWithTheMmuOff() throws Exception {
        HvfVcpu boot = boot(2);
        HvfVcpu second = vcpus.get(1);
        CompletableFuture<long[]> seen = new CompletableFuture<>();
        fake.script(1, inspect(s -> seen.complete(new long[] {s.regs[PC], s.regs[0], s.regs[CPSR],
                s.sysRegs.get(0xC080), s.mpidr()}), exception(0xF200_0000L, 0)));
        CompletableFuture<Integer> secondary = onItsThread(second);
        fake.script(0, hvc(0xC400_0003L, 1, ENTRY + 0x100, 0xC0FFEE), // CPU_ON(1)
                inspect(s -> assertEquals(0, s.regs[0]), hvc(0xC400_0003L, 1, ENTRY, 0))); // again: ALREADY_ON or ON_PENDING
        Thread.sleep(50);
        assertFalse(secondary.isDone()); // powered off until CPU_ON
        fake.script(0, inspect(s -> assertTrue(s.regs[0] == -4 || s.regs[0] == -5), exception(0xF200_0000L, 0)));
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, boot.enter());
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, (int) secondary.get(5, TimeUnit.SECONDS));
        long[] s = seen.get(5, TimeUnit.SECONDS);
        assertEquals(ENTRY + 0x100, s[0]);
        assertEquals(0xC0FFEE, s[1]);
        assertEquals(0x3C5, s[2]);
        assertEquals(0x30D0_0800L, s[3]); // SCTLR_EL1 as at reset: MMU off
        assertEquals(1L, s[4]); // MPIDR as KVM numbers it
    }

    @Test
    void cpuOffParksTheVcpuUntilAnExitRequest() throws Exception {
        HvfVcpu v = boot(1);
        fake.script(0, hvc(0x8400_0002L, 0, 0, 0)); // CPU_OFF
        CompletableFuture<Integer> r = onItsThread(v);
        Thread.sleep(50);
        assertFalse(r.isDone());
        v.requestExit();
        assertEquals(Hypervisor.Vcpu.EXIT_INTERRUPTED, (int) r.get(5, TimeUnit.SECONDS));
    }

    @Test
    void anExitRequestEndsARunningGuestsRun() throws Exception {
        HvfVcpu v = boot(1);
        CompletableFuture<Integer> r = onItsThread(v); // no script: the guest idles until hv_vcpus_exit
        Thread.sleep(50);
        assertFalse(r.isDone());
        v.requestExit();
        assertEquals(Hypervisor.Vcpu.EXIT_INTERRUPTED, (int) r.get(5, TimeUnit.SECONDS));
        assertInstanceOf(VcpuExit.Interrupted.class, v.lastExit());
    }

    @Test
    void aRequestBeforeTheRunIsNotLost() {
        HvfVcpu v = boot(1);
        fake.script(0, exception(0xF200_0000L, 0));
        v.requestExit();
        assertEquals(Hypervisor.Vcpu.EXIT_INTERRUPTED, v.enter());
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, v.enter()); // and the guest goes on where it was
    }

    @Test
    void waitsTrapsAndTimerExitsGoBackIntoTheGuest() {
        HvfVcpu v = boot(1);
        fake.script(0,
                exception(0x0600_0000L, 0), // wfi (the timer is off: parks at most 1 ms)
                exception(0x07E0_0001L, 0), // wfe
                reason(2), // a vtimer exit: the framework masked the timer
                dataAbort(0x6228_0403L, 0, 0, 0x77), // mrs x0, oslsr_el1: reads as zero
                inspect(s -> {
                    assertEquals(ENTRY + 12, s.regs[PC]);
                    assertEquals(0, s.regs[0]);
                }, reason(3))); // an exit reason the framework calls unknown
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, v.enter());
        assertEquals(new VcpuExit.Unknown(3), v.lastExit());
        assertTrue(fake.log.contains("hv_vcpu_set_vtimer_mask(false)"));
    }

    @Test
    void wfiParksUntilTheTimersDeadlineOrAnInterrupt() throws Exception {
        HvfVcpu v = boot(1);
        fake.counter = 1_000_000_000L;
        // the guest's timer fires in 10 s: CNTV_CTL enabled, unmasked, not yet pending
        fake.script(0, inspect(s -> {
            s.sysRegs.put(0xDF19, 1L);
            s.sysRegs.put(0xDF1A, 11_000_000_000L);
        }, exception(0x0600_0000L, 0)), exception(0xF200_0000L, 0));
        long t0 = System.nanoTime();
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, v.enter());
        long parked = System.nanoTime() - t0;
        assertTrue(parked >= 900_000 && parked < 5_000_000_000L, "parked " + parked + " ns: about 1 ms, not the 10 s");

        // a deadline past already, or a pending timer: no wait at all
        fake.script(0, inspect(s -> s.sysRegs.put(0xDF1A, 900_000_000L), exception(0x0600_0000L, 0)),
                inspect(s -> s.sysRegs.put(0xDF19, 5L), exception(0x0600_0000L, 0)), exception(0xF200_0000L, 0));
        long parks = vm.parks.get();
        assertEquals(1, parks); // the first WFI's
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, v.enter());
        assertEquals(parks, vm.parks.get());
    }

    @Test
    void anInterruptCpuOnOrExitRequestEndsTheWait() throws Exception {
        boot(2);
        for (Runnable waker : List.<Runnable>of(() -> vm.setSpi(41, true), () -> vm.cpuOn(1, ENTRY, 0),
                () -> vcpus.get(0).requestExit())) {
            long since = vm.wakeups();
            CompletableFuture<Long> parked = CompletableFuture.supplyAsync(() -> {
                long t0 = System.nanoTime();
                vm.idle(since, TimeUnit.SECONDS.toNanos(10), () -> false);
                return System.nanoTime() - t0;
            });
            Thread.sleep(50);
            assertFalse(parked.isDone());
            waker.run();
            assertTrue(parked.get(5, TimeUnit.SECONDS) < TimeUnit.SECONDS.toNanos(5));
        }
        vm.setSpi(41, false); // a line going low wakes nobody
        long since = vm.wakeups();
        vm.idle(since, 1_000_000, () -> false);
        assertEquals(since, vm.wakeups());
    }

    @Test
    void hvcWithAnotherImmediateIsNotPsci() {
        HvfVcpu v = boot(1);
        fake.script(0, v2 -> {
            v2.regs[0] = 0x8400_0008L; // SYSTEM_OFF, but through hvc #1
            v2.reason = 1;
            v2.syndrome = 0x5A00_0001L;
        }, inspect(s -> assertEquals(-1, s.regs[0]), exception(0xF200_0000L, 0)));
        assertEquals(Hypervisor.Vcpu.EXIT_OTHER, v.enter());
        assertInstanceOf(VcpuExit.UnhandledException.class, v.lastExit());
    }

    @Test
    void memoryBeyondTheIpaSpaceIsRefusedNamingIt() throws Exception {
        fake.maxIpaBits = 36;
        vm = Hvf.over(fake).createVm();
        try (AnonymousMapping m = AnonymousMapping.map(1 << 20)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> vm.mapMemory(0, GuestAddress.of((1L << 36) - 4096), m));
            assertTrue(e.getMessage().contains("36-bit IPA space"), e.getMessage());
        }
    }

    @Test
    void aVcpuBelongsToTheThreadThatRanItFirst() throws Exception {
        HvfVcpu v = boot(1);
        fake.script(0, exception(0x0600_0000L, 0), exception(0xF200_0000L, 0));
        CompletableFuture.runAsync(v::enter).get(5, TimeUnit.SECONDS); // created on that thread
        assertThrows(IllegalStateException.class, v::enter);
        assertThrows(IllegalStateException.class, () -> v.read(Arm64Registers.Register.PC));
        v.threadEnding(); // not the owner: nothing destroyed
        assertFalse(fake.log.stream().anyMatch(l -> l.startsWith("hv_vcpu_destroy")));
        assertThrows(HvfException.class, () -> vm.close()); // the framework refuses while a vCPU lives
        vcpus.clear();
        vm = null;
    }

    @Test
    void registersForDiagnosis() {
        HvfVcpu v = boot(1);
        fake.script(0, exception(0xF200_0000L, 0));
        v.enter();
        assertEquals(ENTRY, v.read(Arm64Registers.Register.PC));
        assertEquals(FDT, v.read(Arm64Registers.Register.X0));
        assertEquals(0x3C5, v.read(Arm64Registers.Register.PSTATE));
        assertEquals(0x30D0_0800L, v.read(Arm64Registers.Register.SCTLR_EL1));
    }
}
