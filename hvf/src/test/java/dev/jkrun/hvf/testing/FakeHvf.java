package dev.jkrun.hvf.testing;

import dev.jkrun.hvf.HvReturn;
import dev.jkrun.hvf.HvfCalls;
import dev.jkrun.hvf.HvfException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Hypervisor.framework as a script: each vCPU (by the MPIDR jkrun gives it) replays a list of exits, each a
 * syndrome, an address and the registers the guest would have had at that instruction. It keeps what the framework
 * keeps (registers, system registers, mappings, the GIC's lines) and enforces what it enforces: one VM, the GIC
 * before any vCPU, a vCPU used only on the thread that created it. A vCPU whose script is done waits, as a guest in
 * WFI would, until hv_vcpus_exit.
 */
public final class FakeHvf implements HvfCalls {
    /** One exit: sets the vCPU's registers and exit fields as the framework would when the guest got there. */
    @FunctionalInterface
    public interface Exit {
        void happen(Vcpu v);
    }

    /** A fake vCPU's state. */
    public static final class Vcpu {
        public final long[] regs = new long[35];
        public final Map<Integer, Long> sysRegs = new HashMap<>();
        public int reason;
        public long syndrome, ipa;
        final Thread creator = Thread.currentThread();
        final Deque<Exit> script = new ArrayDeque<>();
        boolean exitRequested, destroyed;
        public long vtimerOffset;
        public int runs;

        public long mpidr() { return sysRegs.getOrDefault(0xC005, -1L); }
    }

    public final List<String> log = Collections.synchronizedList(new ArrayList<>());
    public boolean gic = true;
    public long distributorSize = 0x1_0000, redistributorSize = 0x2_0000, distributorAlignment = 0x1_0000,
            redistributorAlignment = 0x1_0000;
    public int[] spiRange = {32, 988};
    /** hv_vm_create's answer (HV_DENIED for a process without the entitlement). */
    public int createResult = HvReturn.SUCCESS;
    public int hvSupport = 1;
    public boolean vmOpen, gicCreated;
    /** ipa → {host, size}. */
    public final Map<Long, long[]> maps = new HashMap<>();
    private final Map<Long, Vcpu> vcpus = new HashMap<>();
    private final Map<Long, Deque<Exit>> scripts = new HashMap<>();
    private long nextHandle = 100;

    /** The exits the vCPU with MPIDR {@code mpidr} replays, in order. */
    public synchronized FakeHvf script(long mpidr, Exit... exits) {
        scripts.computeIfAbsent(mpidr, m -> new ArrayDeque<>()).addAll(List.of(exits));
        notifyAll();
        return this;
    }

    public synchronized Vcpu vcpu(long mpidr) {
        for (Vcpu v : vcpus.values()) {
            if (v.mpidr() == mpidr) {
                return v;
            }
        }
        return null;
    }

    // ---- exits a script is made of ----------------------------------------------------------------------------

    /** A data abort at {@code ipa} with syndrome {@code esr}, the guest's registers {@code xRegs} (pairs: n, value). */
    public static Exit dataAbort(long esr, long ipa, long... xRegs) {
        return v -> {
            for (int i = 0; i + 1 < xRegs.length; i += 2) {
                v.regs[(int) xRegs[i]] = xRegs[i + 1];
            }
            v.reason = 1;
            v.syndrome = esr;
            v.ipa = ipa;
        };
    }

    /** HVC #0 with X0–X3 (the framework reports PC already past it). */
    public static Exit hvc(long x0, long x1, long x2, long x3) { return call(0x5A00_0000L, 4, x0, x1, x2, x3); }

    /** SMC #0 with X0–X3 (PC still at it). */
    public static Exit smc(long x0, long x1, long x2, long x3) { return call(0x5E00_0000L, 0, x0, x1, x2, x3); }

    private static Exit call(long syndrome, long pcStep, long x0, long x1, long x2, long x3) {
        return v -> {
            v.regs[0] = x0;
            v.regs[1] = x1;
            v.regs[2] = x2;
            v.regs[3] = x3;
            v.regs[31] += pcStep;
            v.reason = 1;
            v.syndrome = syndrome;
            v.ipa = 0;
        };
    }

    /** Any exception exit. */
    public static Exit exception(long esr, long ipa) {
        return v -> {
            v.reason = 1;
            v.syndrome = esr;
            v.ipa = ipa;
        };
    }

    /** An exit of reason {@code reason} (0 canceled, 2 vtimer, 3 unknown). */
    public static Exit reason(int reason) {
        return v -> v.reason = reason;
    }

    /** Runs {@code check} on the vCPU's state when the guest gets here, then exits as {@code then} does. */
    public static Exit inspect(Consumer<Vcpu> check, Exit then) {
        return v -> {
            check.accept(v);
            then.happen(v);
        };
    }

    // ---- HvfCalls ---------------------------------------------------------------------------------------------

    /** The IPA bits the framework grants (the default VM of macOS before 13 has 36). */
    public int maxIpaBits = 40;
    /** The host counter (mach_absolute_time), in ticks of 1 ns here. */
    public volatile long counter;

    @Override
    public synchronized int vmCreate(int ipaBits) {
        log.add("hv_vm_create(ipa " + ipaBits + ")");
        HvReturn.check("hv_vm_create", vmOpen ? HvReturn.BUSY : createResult);
        vmOpen = true;
        return Math.min(ipaBits, maxIpaBits);
    }

    @Override
    public synchronized void vmDestroy() {
        log.add("hv_vm_destroy");
        for (Vcpu v : vcpus.values()) {
            if (!v.destroyed) {
                throw new HvfException("hv_vm_destroy", HvReturn.BUSY);
            }
        }
        vmOpen = false;
    }

    @Override
    public synchronized void vmMap(long host, long ipa, long size) {
        log.add(String.format("hv_vm_map(%#x, %#x)", ipa, size));
        maps.put(ipa, new long[] {host, size});
    }

    @Override
    public synchronized void vmUnmap(long ipa, long size) {
        log.add(String.format("hv_vm_unmap(%#x, %#x)", ipa, size));
        maps.remove(ipa);
    }

    @Override
    public int maxVcpus() { return 64; }

    @Override
    public boolean hasGic() { return gic; }

    @Override
    public long gicDistributorSize() { return distributorSize; }

    @Override
    public long gicRedistributorSize() { return redistributorSize; }

    @Override
    public long gicDistributorAlignment() { return distributorAlignment; }

    @Override
    public long gicRedistributorAlignment() { return redistributorAlignment; }

    @Override
    public int[] gicSpiRange() { return spiRange.clone(); }

    @Override
    public synchronized void gicCreate(long distributor, long redistributors) {
        log.add(String.format("hv_gic_create(%#x, %#x)", distributor, redistributors));
        if (!vmOpen || !vcpus.isEmpty()) {
            throw new HvfException("hv_gic_create", HvReturn.BAD_ARGUMENT); // after the VM, before any vCPU
        }
        gicCreated = true;
    }

    @Override
    public void gicSetSpi(int intid, boolean level) {
        log.add("hv_gic_set_spi(" + intid + ", " + level + ")");
    }

    @Override
    public synchronized long vcpuCreate() {
        long h = nextHandle++;
        vcpus.put(h, new Vcpu());
        log.add("hv_vcpu_create -> " + h + " on " + Thread.currentThread().getName());
        return h;
    }

    private synchronized Vcpu owned(String call, long h) {
        Vcpu v = vcpus.get(h);
        if (v == null || v.destroyed) {
            throw new HvfException(call, HvReturn.BAD_ARGUMENT);
        }
        if (Thread.currentThread() != v.creator) {
            throw new IllegalStateException(call + " of vCPU " + h + " from " + Thread.currentThread().getName()
                    + ", not the thread that created it");
        }
        return v;
    }

    @Override
    public synchronized void vcpuDestroy(long vcpu) {
        owned("hv_vcpu_destroy", vcpu).destroyed = true;
        log.add("hv_vcpu_destroy(" + vcpu + ")");
    }

    @Override
    public void vcpuRun(long vcpu) {
        Vcpu v = owned("hv_vcpu_run", vcpu);
        synchronized (this) {
            v.runs++;
            Exit next = next(v);
            if (next == null) {
                while (!v.exitRequested && (next = next(v)) == null) { // a guest idling in WFI: hv_vcpus_exit or more script
                    try {
                        wait();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        break;
                    }
                }
            }
            if (v.exitRequested) { // pending or arriving: the run returns canceled, as QEMU's hvf backend relies on
                v.exitRequested = false;
                if (next != null) {
                    v.script.addFirst(next);
                }
                v.reason = 0;
                return;
            }
            next.happen(v);
        }
    }

    private Exit next(Vcpu v) {
        Deque<Exit> s = scripts.remove(v.mpidr());
        if (s != null) {
            v.script.addAll(s);
        }
        return v.script.poll();
    }

    @Override
    public synchronized void vcpuRequestExit(long vcpu) {
        Vcpu v = vcpus.get(vcpu);
        if (v == null || v.destroyed) {
            throw new HvfException("hv_vcpus_exit", HvReturn.BAD_ARGUMENT);
        }
        v.exitRequested = true;
        notifyAll();
    }

    @Override
    public synchronized int exitReason(long vcpu) { return owned("exit", vcpu).reason; }

    @Override
    public synchronized long exitSyndrome(long vcpu) { return owned("exit", vcpu).syndrome; }

    @Override
    public synchronized long exitPhysicalAddress(long vcpu) { return owned("exit", vcpu).ipa; }

    @Override
    public synchronized long getReg(long vcpu, int reg) {
        checkReg(reg);
        return owned("hv_vcpu_get_reg", vcpu).regs[reg];
    }

    @Override
    public synchronized void setReg(long vcpu, int reg, long value) {
        checkReg(reg);
        owned("hv_vcpu_set_reg", vcpu).regs[reg] = value;
    }

    private static void checkReg(int reg) {
        if (reg < 0 || reg > 34) {
            throw new HvfException("hv_vcpu_get_reg", HvReturn.BAD_ARGUMENT);
        }
    }

    @Override
    public synchronized long getSysReg(long vcpu, int reg) {
        return owned("hv_vcpu_get_sys_reg", vcpu).sysRegs.getOrDefault(reg, reg == 0xC080 ? 0x30D0_0800L : 0L);
    }

    @Override
    public synchronized void setSysReg(long vcpu, int reg, long value) {
        owned("hv_vcpu_set_sys_reg", vcpu).sysRegs.put(reg, value);
    }

    @Override
    public synchronized void setVtimerMask(long vcpu, boolean masked) {
        owned("hv_vcpu_set_vtimer_mask", vcpu);
        log.add("hv_vcpu_set_vtimer_mask(" + masked + ")");
    }

    @Override
    public synchronized long getVtimerOffset(long vcpu) { return owned("hv_vcpu_get_vtimer_offset", vcpu).vtimerOffset; }

    @Override
    public long hostCounter() { return counter; }

    @Override
    public long counterNanos(long ticks) { return ticks; }

    @Override
    public int hvSupport() { return hvSupport; }
}
