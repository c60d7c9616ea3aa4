package dev.jkrun.hvf;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jkrun.arch.aarch64.Layout;
import dev.jkrun.hvf.testing.FakeHvf;
import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.hypervisor.VcpuExit;
import dev.jkrun.libc.AnonymousMapping;
import dev.jkrun.memory.GuestAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * The HVF vCPU loop on whatever a hostile guest can make the framework report: any exit reason, any syndrome (mostly
 * of the exception classes the loop decodes, with any ISS), any faulting address, any X0–X3 and PC (PSCI arguments,
 * transfer registers). enter() must only ever return one of its kinds, never throw; an MMIO exit has 1–8 bytes and
 * takes any answer; a vCPU that powers itself off or idles comes back on an exit request. The guest ends with a BRK,
 * which is a stop reason. Replayed from the committed inputs by every test run; fuzzed with
 * {@code fuzz/run HvfExitFuzzTest}.
 */
class HvfExitFuzzTest {
    private static final int[] CLASSES = {0x24, 0x24, 0x24, 0x16, 0x16, 0x17, 0x01, 0x18, 0x20, 0x3C, 0x00, 0x3F};
    private static final ScheduledExecutorService WATCHDOG = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "fuzz-watchdog");
        t.setDaemon(true);
        return t;
    });

    @FuzzTest(maxDuration = "1h")
    void anyExits(FuzzedDataProvider data) throws Exception {
        FakeHvf fake = new FakeHvf();
        List<FakeHvf.Exit> exits = new ArrayList<>();
        int n = data.consumeInt(0, 24);
        for (int i = 0; i < n; i++) {
            int reason = data.consumeInt(0, 9) == 0 ? data.consumeInt() : 1;
            long esr = data.consumeBoolean() ? ((long) CLASSES[data.consumeInt(0, CLASSES.length - 1)] << 26)
                    | (1L << 25) | (data.consumeInt() & 0x1FF_FFFFL) : data.consumeLong();
            long ipa = data.consumeBoolean() ? Layout.MMIO_START + data.consumeInt(0, 0x1_0000) : data.consumeLong();
            long[] x = {data.consumeLong(), data.consumeLong(), data.consumeLong(), data.consumeLong()};
            if (data.consumeBoolean()) { // a PSCI function id in W0
                x[0] = data.pickValue(new long[] {0x8400_0000L, 0x8400_0002L, 0xC400_0003L, 0x8400_0003L, 0xC400_0004L,
                        0x8400_0008L, 0x8400_0009L, 0x8400_000AL, 0xC400_0001L});
            }
            long pcStep = data.consumeBoolean() ? 0 : data.consumeLong();
            exits.add(v -> {
                System.arraycopy(x, 0, v.regs, 0, 4);
                v.regs[31] += pcStep;
                v.reason = reason;
                v.syndrome = esr;
                v.ipa = ipa;
            });
        }
        exits.add(FakeHvf.exception(0xF200_0000L, 0)); // BRK: the end
        fake.script(0, exits.toArray(FakeHvf.Exit[]::new));
        byte[] answer = data.consumeBytes(8);

        HvfVm vm = Hvf.over(fake).createVm();
        HvfVcpu v = null;
        try (AnonymousMapping ram = AnonymousMapping.map(1 << 16)) {
            vm.mapMemory(0, GuestAddress.of(Layout.RAM_START), ram);
            vm.createGic(1, HvfVcpuTest.placement(1), new ArrayList<>());
            v = vm.createVcpu(0);
            vm.initVcpu(v, 0, Layout.RAM_START, 0);
            vm.vcpusCreated(List.of(v));
            HvfVcpu vcpu = v;
            for (int step = 0; step < 64; step++) {
                ScheduledFuture<?> stuck = WATCHDOG.schedule(vcpu::requestExit, 200, TimeUnit.MILLISECONDS);
                int kind;
                try {
                    kind = vcpu.enter();
                } finally {
                    stuck.cancel(false);
                }
                if (kind == Hypervisor.Vcpu.EXIT_MMIO_READ || kind == Hypervisor.Vcpu.EXIT_MMIO_WRITE) {
                    int len = vcpu.dataLength();
                    assertTrue(len == 1 || len == 2 || len == 4 || len == 8, "length " + len);
                    byte[] b = new byte[len];
                    if (kind == Hypervisor.Vcpu.EXIT_MMIO_WRITE) {
                        vcpu.exitData(0, b);
                    } else {
                        System.arraycopy(answer, 0, b, 0, Math.min(answer.length, len));
                        vcpu.completeRead(0, b);
                    }
                    continue;
                }
                assertTrue(kind == Hypervisor.Vcpu.EXIT_OTHER || kind == Hypervisor.Vcpu.EXIT_INTERRUPTED, "kind " + kind);
                VcpuExit e = vcpu.lastExit();
                if (kind == Hypervisor.Vcpu.EXIT_OTHER) {
                    assertTrue(e instanceof VcpuExit.UnhandledException || e instanceof VcpuExit.DataAbortWithoutSyndrome
                            || e instanceof VcpuExit.SystemEvent || e instanceof VcpuExit.Unknown, e.toString());
                }
                break; // a stop reason, or a kick (a canceled run, a vCPU parked powered off): the VMM decides next
            }
        } finally {
            if (v != null) {
                v.threadEnding();
            }
            vm.close();
        }
    }
}
