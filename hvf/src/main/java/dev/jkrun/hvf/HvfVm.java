package dev.jkrun.hvf;

import dev.jkrun.arch.aarch64.Layout;
import dev.jkrun.arch.aarch64.Psci;
import dev.jkrun.hypervisor.Arm64Vm;
import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.libc.AnonymousMapping;
import dev.jkrun.memory.GuestAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * The process's Hypervisor.framework VM: guest memory by hv_vm_map of the same off-heap mappings KVM takes, the
 * framework's GICv3 at the platform's addresses, and the PSCI state of its vCPUs, which the VMM keeps itself
 * (KVM keeps it in the kernel): which are on, and where a CPU_ON starts one. No ioeventfd or irqfd
 * ({@link #ioEvents()} is empty), so devices hear notifications as MMIO writes and drive their SPIs as levels.
 */
public final class HvfVm implements Hypervisor.Vm, Arm64Vm, Psci.Cpus {
    private final HvfCalls calls;
    private final Consumer<HvfVm> onClose;
    /** Mapped slots: slot → {ipa, size}. Guarded by {@code this}. */
    private final Map<Integer, long[]> slots = new TreeMap<>();
    private final List<HvfVcpu> vcpus = new ArrayList<>();
    /** Counts vCPUs not yet created on their threads: the boot vCPU runs once the topology is complete. */
    private java.util.concurrent.CountDownLatch allCreated;
    private boolean gic;
    private boolean closed;

    private final int ipaBits;
    /** Counts the events that end a WFI: an interrupt raised, a CPU_ON, an exit request (see {@link #idle}). */
    private final java.util.concurrent.atomic.AtomicLong wakeups = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicInteger idlers = new java.util.concurrent.atomic.AtomicInteger();
    private final Object idle = new Object();
    /** How many WFI waits began (for tests: which WFIs parked at all). */
    final java.util.concurrent.atomic.AtomicLong parks = new java.util.concurrent.atomic.AtomicLong();

    HvfVm(HvfCalls calls, int ipaBits, Consumer<HvfVm> onClose) {
        this.calls = calls;
        this.ipaBits = ipaBits;
        this.onClose = onClose;
    }

    @Override
    public synchronized void mapMemory(int slot, GuestAddress at, AnonymousMapping mapping) {
        if (slots.containsKey(slot)) {
            throw new IllegalArgumentException("slot " + slot + " is mapped already");
        }
        if (ipaBits < 64 && Long.compareUnsigned(at.value() + mapping.size(), 1L << ipaBits) > 0) {
            throw new IllegalArgumentException(String.format("guest-physical [%#x, %#x) lies beyond this Mac's %d-bit"
                    + " IPA space: give the VM less memory (or fewer DAX windows)", at.value(), at.value() + mapping.size(),
                    ipaBits));
        }
        calls.vmMap(mapping.address(), at.value(), mapping.size());
        slots.put(slot, new long[] {at.value(), mapping.size()});
    }

    @Override
    public synchronized void unmapMemory(int slot) {
        long[] s = slots.remove(slot);
        if (s != null) {
            calls.vmUnmap(s[0], s[1]);
        }
    }

    @Override
    public synchronized HvfVcpu createVcpu(int id) {
        if (id < 0) {
            throw new IllegalArgumentException("vCPU id " + id);
        }
        HvfVcpu v = new HvfVcpu(this, calls, id, Layout.mpidrOf(id));
        vcpus.add(v);
        return v;
    }

    @Override
    public Optional<Hypervisor.IoEvents> ioEvents() { return Optional.empty(); }

    @Override
    public Optional<Arm64Vm> arm64() { return Optional.of(this); }

    // ---- Arm64Vm ----------------------------------------------------------------------------------------------

    /**
     * The framework's GICv3 (macOS 15), its frames where the platform wants them: refused, naming the numbers, where
     * the framework's frame sizes, alignments or SPI range do not fit the platform's layout.
     */
    @Override
    public synchronized Gic createGic(int vcpuCount, GicPlacement at, List<AutoCloseable> resources) {
        if (!calls.hasGic()) {
            throw new IllegalStateException(Hvf.NO_GIC);
        }
        long dist = calls.gicDistributorSize(), redist = calls.gicRedistributorSize();
        if (Long.compareUnsigned(dist, at.distributorSize()) > 0 || redist != at.redistributorSizePerCpu()) {
            throw new IllegalStateException(String.format("Hypervisor.framework's GIC has a %#x-byte distributor and"
                    + " %#x-byte redistributors; jkrun's aarch64 layout has room for %#x and %#x", dist, redist,
                    at.distributorSize(), at.redistributorSizePerCpu()));
        }
        long da = calls.gicDistributorAlignment(), ra = calls.gicRedistributorAlignment();
        if (!aligned(at.distributor(), da) || !aligned(at.redistributors(), ra)) {
            throw new IllegalStateException(String.format("Hypervisor.framework's GIC wants its distributor aligned to"
                    + " %#x and its redistributors to %#x; jkrun places them at %#x and %#x", da, ra, at.distributor(),
                    at.redistributors()));
        }
        int[] spis = calls.gicSpiRange();
        if (spis[0] > 32 || (long) spis[0] + spis[1] < at.nrIrqs()) {
            throw new IllegalStateException("Hypervisor.framework's GIC offers SPIs " + spis[0] + " to "
                    + ((long) spis[0] + spis[1] - 1) + "; jkrun's devices use 32 to " + (at.nrIrqs() - 1));
        }
        calls.gicCreate(at.distributor(), at.redistributors());
        gic = true;
        return Gic.V3;
    }

    private static boolean aligned(long address, long alignment) {
        return alignment <= 1 || (Long.bitCount(alignment) == 1 && (address & (alignment - 1)) == 0);
    }

    @Override
    public void setSpi(int intid, boolean level) {
        calls.gicSetSpi(intid, level);
        if (level) {
            wake();
        }
    }

    /** Ends every vCPU's WFI wait (the framework's GIC may have work for any of them). */
    void wake() {
        wakeups.incrementAndGet();
        if (idlers.get() > 0) {
            synchronized (idle) {
                idle.notifyAll();
            }
        }
    }

    long wakeups() { return wakeups.get(); }

    /**
     * Parks the calling vCPU thread for up to {@code nanos}, or until {@link #wake()} ran after the count
     * {@code since} was read, or {@code stop} holds.
     */
    void idle(long since, long nanos, java.util.function.BooleanSupplier stop) {
        parks.incrementAndGet();
        idlers.incrementAndGet();
        try {
            synchronized (idle) {
                long deadline = System.nanoTime() + nanos;
                while (wakeups.get() == since && !stop.getAsBoolean()) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        return;
                    }
                    idle.wait(left / 1_000_000, (int) (left % 1_000_000));
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            idlers.decrementAndGet();
        }
    }

    @Override
    public void initVcpu(Hypervisor.Vcpu vcpu, int id, long entry, long x0) {
        HvfVcpu v = (HvfVcpu) vcpu;
        if (id == 0) {
            v.powerOn(entry, x0);
        }
    }

    @Override
    public synchronized void vcpusCreated(List<Hypervisor.Vcpu> all) {
        allCreated = new java.util.concurrent.CountDownLatch(all.size());
    }

    @Override
    public long mpidr(Hypervisor.Vcpu vcpu) { return ((HvfVcpu) vcpu).mpidr(); }

    // ---- the vCPUs' threads ------------------------------------------------------------------------------------

    /** A vCPU exists on its thread. */
    void created() {
        java.util.concurrent.CountDownLatch l;
        synchronized (this) {
            l = allCreated;
        }
        if (l != null) {
            l.countDown();
        }
    }

    /** Whether every vCPU has been created (waits up to {@code millis}). */
    boolean awaitAllCreated(long millis) throws InterruptedException {
        java.util.concurrent.CountDownLatch l;
        synchronized (this) {
            l = allCreated;
        }
        return l == null || l.await(millis, java.util.concurrent.TimeUnit.MILLISECONDS);
    }

    // ---- PSCI (Psci.Cpus) --------------------------------------------------------------------------------------

    private HvfVcpu byAffinity(long mpidr) {
        long aff = Psci.affinity(mpidr);
        synchronized (this) {
            for (HvfVcpu v : vcpus) {
                if (v.mpidr() == aff) {
                    return v;
                }
            }
        }
        return null;
    }

    /** Whether {@code address} (4-byte aligned) lies in guest RAM: where a CPU_ON may start a vCPU. */
    synchronized boolean inRam(long address) {
        if ((address & 3) != 0) {
            return false;
        }
        for (long[] s : slots.values()) {
            if (Long.compareUnsigned(address, s[0]) >= 0 && Long.compareUnsigned(address - s[0], s[1]) < 0) {
                return true;
            }
        }
        return false;
    }

    @Override
    public int cpuOn(long mpidr, long entry, long contextId) {
        HvfVcpu v = byAffinity(mpidr);
        if (v == null) {
            return Psci.INVALID_PARAMETERS;
        }
        if (!inRam(entry)) {
            return Psci.INVALID_ADDRESS;
        }
        int r = v.cpuOn(entry, contextId);
        wake();
        return r;
    }

    @Override
    public int affinityInfo(long mpidr) {
        HvfVcpu v = byAffinity(mpidr);
        return v == null ? Psci.INVALID_PARAMETERS : v.affinityInfo();
    }

    /**
     * hv_vm_destroy; every vCPU must have been destroyed on its thread before. Refused (HV_BUSY) while a vCPU lives:
     * the process's VM then stays taken, and a later close may try again.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        calls.vmDestroy();
        closed = true;
        onClose.accept(this);
    }
}
