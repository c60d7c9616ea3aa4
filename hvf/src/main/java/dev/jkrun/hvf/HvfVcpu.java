package dev.jkrun.hvf;

import dev.jkrun.arch.aarch64.Esr;
import dev.jkrun.arch.aarch64.Psci;
import dev.jkrun.hypervisor.Arm64Registers;
import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.hypervisor.VcpuExit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One Hypervisor.framework vCPU and the part of the vCPU loop KVM does in the kernel: hv_vcpu_run returns an
 * exception syndrome (ESR_EL2), and this class turns it into what {@link Hypervisor.Vcpu#enter()} reports.
 * <ul>
 *   <li>a data abort with a valid syndrome: an MMIO read or write of 1–8 bytes ({@link Esr#dataAbort}); a write's data
 *       is the transfer register, a read's answer goes into it on the next {@link #enter()}, zero- or sign-extended as
 *       the syndrome says, and PC moves past the instruction; XZR reads as zero and discards what it is given;</li>
 *   <li>a data abort without one (a pair, a writeback), or from the guest's own page-table walk: a stop reason
 *       naming the address ({@link VcpuExit.DataAbortWithoutSyndrome}); a cache maintenance instruction on device
 *       memory is skipped, as KVM does;</li>
 *   <li>HVC (and SMC) #0: a PSCI call ({@link Psci#call}): answered in X0, CPU_ON starting another vCPU, CPU_OFF
 *       parking this one, SYSTEM_OFF and SYSTEM_RESET as the system events KVM reports;</li>
 *   <li>WFI: PC past it, and the thread parks until the virtual timer's deadline, an interrupt jkrun raises, a CPU_ON
 *       or an exit request, for at most 1 ms (interrupts the framework's GIC raises itself, such as SGIs between
 *       vCPUs, reach jkrun no other way); WFE: straight back in;</li>
 *   <li>HVC or SMC with an immediate other than 0: NOT_SUPPORTED in X0;</li>
 *   <li>MSR/MRS of a register the framework traps: reads as zero, writes ignored;</li>
 *   <li>anything else: a stop reason with the syndrome ({@link VcpuExit.UnhandledException}).</li>
 * </ul>
 * The framework binds a vCPU to the thread that created it: the native vCPU is created on the first {@link #enter()}
 * (with the start state the platform asked for) and destroyed in {@link #threadEnding()}, both on the vCPU's thread.
 * Nothing on the MMIO path allocates.
 */
public final class HvfVcpu implements Hypervisor.Vcpu, Arm64Registers {
    private static final int HANDLED = -1;
    private static final VcpuExit INTERRUPTED = new VcpuExit.Interrupted();
    private static final long S1PTW = 1L << 7, EA = 1L << 9, CM = 1L << 8;
    private static final int POWER_OFF = 0, POWER_ON_PENDING = 1, POWER_ON = 2;

    private final HvfVm vm;
    private final HvfCalls calls;
    private final int id;
    private final long mpidr;
    private final AtomicBoolean exitRequested = new AtomicBoolean();

    /** The native vCPU, once created on {@link #owner}. */
    private long handle;
    private boolean created, destroyed;
    private Thread owner;
    private long sctlrAtReset, vtimerOffset;
    /** {@link HvfVm#wakeups()} when the guest last entered: a WFI after a wake-up since then does not park. */
    private long enteredAt;
    private boolean vtimerMasked;

    /** PSCI power state and the start a CPU_ON asked for; guarded by {@link #vm}. */
    private int power = POWER_OFF;
    private long startPc, startX0;

    // the last exit, as enter() reported it
    private VcpuExit last = INTERRUPTED;
    private long mmioAddress, mmioData, readSyndrome;
    private int mmioLength;
    private boolean readPending, advancePending;
    /** Powered on, as this vCPU's own thread last saw it (only that thread turns it on or off): no lock per exit. */
    private boolean running;
    private int lastKind = EXIT_INTERRUPTED;

    HvfVcpu(HvfVm vm, HvfCalls calls, int id, long mpidr) {
        this.vm = vm;
        this.calls = calls;
        this.id = id;
        this.mpidr = mpidr;
    }

    @Override
    public int id() { return id; }

    long mpidr() { return mpidr; }

    /** The boot vCPU, before it runs: on at {@code pc} with {@code x0}. */
    void powerOn(long pc, long x0) {
        synchronized (vm) {
            startPc = pc;
            startX0 = x0;
            power = POWER_ON_PENDING;
            vm.notifyAll();
        }
    }

    /** PSCI CPU_ON of this vCPU (from another vCPU's thread). */
    int cpuOn(long pc, long contextId) {
        synchronized (vm) {
            if (power == POWER_ON) {
                return Psci.ALREADY_ON;
            }
            if (power == POWER_ON_PENDING) {
                return Psci.ON_PENDING;
            }
            startPc = pc;
            startX0 = contextId;
            power = POWER_ON_PENDING;
            vm.notifyAll();
            return Psci.SUCCESS;
        }
    }

    int affinityInfo() {
        synchronized (vm) {
            return switch (power) {
                case POWER_ON -> Psci.AFFINITY_ON;
                case POWER_ON_PENDING -> Psci.AFFINITY_ON_PENDING;
                default -> Psci.AFFINITY_OFF;
            };
        }
    }

    @Override
    public boolean exitsOnRequest() { return true; }

    /** hv_vcpus_exit, and a wake-up for a vCPU parked powered off. */
    @Override
    public void requestExit() {
        exitRequested.set(true);
        synchronized (vm) {
            vm.notifyAll();
        }
        vm.wake();
        long h;
        synchronized (this) {
            h = created && !destroyed ? handle : 0;
            if (h != 0) {
                calls.vcpuRequestExit(h);
            }
        }
    }

    private void create() {
        long h = calls.vcpuCreate();
        synchronized (this) {
            handle = h;
            created = true;
            owner = Thread.currentThread();
        }
        calls.setSysReg(h, HvfRegs.MPIDR_EL1, mpidr);
        sctlrAtReset = calls.getSysReg(h, HvfRegs.SCTLR_EL1);
        vtimerOffset = calls.getVtimerOffset(h);
        vm.created();
    }

    @Override
    public int enter() {
        return lastKind = step();
    }

    private int step() {
        if (!created) {
            create();
        } else {
            checkOwner();
        }
        finishLastExit();
        while (true) {
            if (exitRequested.getAndSet(false)) {
                last = INTERRUPTED;
                return EXIT_INTERRUPTED;
            }
            if (!poweredOn()) {
                last = INTERRUPTED;
                return EXIT_INTERRUPTED;
            }
            enteredAt = vm.wakeups();
            calls.vcpuRun(handle);
            int kind = switch (calls.exitReason(handle)) {
                case HvfRegs.EXIT_CANCELED -> {
                    exitRequested.set(false);
                    last = INTERRUPTED;
                    yield EXIT_INTERRUPTED;
                }
                case HvfRegs.EXIT_EXCEPTION -> {
                    syncVtimer();
                    yield exception();
                }
                case HvfRegs.EXIT_VTIMER_ACTIVATED -> { // not expected with the framework's GIC, which owns the timer
                    vtimerMasked = true; // the framework masked it; unmasked once the guest has dealt with it
                    yield HANDLED;
                }
                default -> {
                    last = new VcpuExit.Unknown(calls.exitReason(handle));
                    yield EXIT_OTHER;
                }
            };
            if (kind != HANDLED) {
                return kind;
            }
            finishLastExit();
        }
    }

    /**
     * Waits while this vCPU is powered off (until CPU_ON or an exit request) and applies a pending start; false
     * when an exit request ended the wait. The boot vCPU also waits until every vCPU exists on its thread.
     */
    private boolean poweredOn() {
        if (running) {
            return true;
        }
        long pc, x0;
        synchronized (vm) {
            while (power == POWER_OFF) {
                if (exitRequested.get()) {
                    return false;
                }
                try {
                    vm.wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            }
            pc = startPc;
            x0 = startX0;
        }
        try {
            while (!vm.awaitAllCreated(10)) {
                if (exitRequested.get()) {
                    return false;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
        // PSCI CPU_ON: EL1h, interrupts masked, MMU and caches off, X0 the context id (booting.rst: X1–X3 zero)
        calls.setSysReg(handle, HvfRegs.SCTLR_EL1, sctlrAtReset);
        calls.setReg(handle, HvfRegs.CPSR, HvfRegs.CPSR_EL1H_DAIF_MASKED);
        calls.setReg(handle, HvfRegs.PC, pc);
        calls.setReg(handle, HvfRegs.X0, x0);
        for (int r = 1; r <= 3; r++) {
            calls.setReg(handle, HvfRegs.X0 + r, 0);
        }
        synchronized (vm) {
            power = POWER_ON;
        }
        running = true;
        return true;
    }

    /**
     * After a vtimer exit the framework leaves the timer masked: unmask it once the guest has turned the timer off,
     * masked it or moved its deadline (libkrun's hvf_sync_vtimer), so that it does not fire again at once.
     */
    private void syncVtimer() {
        if (!vtimerMasked) {
            return;
        }
        long ctl = calls.getSysReg(handle, HvfRegs.CNTV_CTL_EL0);
        if ((ctl & (CNTV_ENABLE | CNTV_IMASK | CNTV_ISTATUS)) != (CNTV_ENABLE | CNTV_ISTATUS)) {
            calls.setVtimerMask(handle, false);
            vtimerMasked = false;
        }
    }

    /** Completes the last exit before the guest runs again: a read's register, PC past the instruction. */
    private void finishLastExit() {
        if (readPending) {
            readPending = false;
            int rt = Esr.dataAbortRegister(readSyndrome);
            if (rt != 31) { // XZR discards
                calls.setReg(handle, HvfRegs.X0 + rt, Esr.loadedValue(readSyndrome, mmioData));
            }
        }
        if (advancePending) {
            advancePending = false;
            calls.setReg(handle, HvfRegs.PC, calls.getReg(handle, HvfRegs.PC) + 4);
        }
    }

    /** Decodes an exception exit: an EXIT_* kind for enter() to return, or HANDLED to run the guest again. */
    private int exception() {
        long esr = calls.exitSyndrome(handle);
        switch (Esr.ec(esr)) {
            case Esr.EC_DABT_LOWER -> {
                long ipa = calls.exitPhysicalAddress(handle);
                if ((esr & CM) != 0 && (esr & (S1PTW | EA)) == 0) { // dc/at on device memory: nothing to clean
                    advancePending = true;
                    return HANDLED;
                }
                if (!Esr.dataAbortValid(esr) || (esr & (S1PTW | EA)) != 0) {
                    last = new VcpuExit.DataAbortWithoutSyndrome(ipa, Esr.iss(esr));
                    return EXIT_OTHER;
                }
                mmioAddress = ipa;
                mmioLength = Esr.dataAbortSize(esr);
                advancePending = true;
                if (Esr.dataAbortWrite(esr)) {
                    int rt = Esr.dataAbortRegister(esr);
                    mmioData = rt == 31 ? 0 : calls.getReg(handle, HvfRegs.X0 + rt);
                    return EXIT_MMIO_WRITE;
                }
                mmioData = 0;
                readSyndrome = esr;
                readPending = true;
                return EXIT_MMIO_READ;
            }
            case Esr.EC_HVC64 -> {
                return call(esr); // the exception returns past the HVC
            }
            case Esr.EC_SMC64 -> {
                advancePending = true; // a trapped SMC returns to itself
                finishLastExit();
                return call(esr);
            }
            case Esr.EC_WFX -> {
                advancePending = true;
                if (!Esr.isWfe(esr)) { // WFE is a spin-wait's pause: straight back in
                    finishLastExit();
                    idle();
                }
                return HANDLED;
            }
            case Esr.EC_SYSREG -> {
                Esr.SysRegAccess a = Esr.sysRegAccess(esr);
                if (a.read() && a.register() != 31) {
                    calls.setReg(handle, HvfRegs.X0 + a.register(), 0);
                }
                advancePending = true;
                return HANDLED;
            }
            default -> {
                last = new VcpuExit.UnhandledException(esr, calls.exitPhysicalAddress(handle));
                return EXIT_OTHER;
            }
        }
    }

    /** The longest WFI wait: what the framework's GIC raises without telling jkrun (SGIs between vCPUs) waits no longer. */
    static final long MAX_IDLE_NANOS = 1_000_000;
    private static final long CNTV_ENABLE = 1, CNTV_IMASK = 2, CNTV_ISTATUS = 4;

    /**
     * WFI: the guest has nothing to do until an interrupt. The thread parks until the virtual timer's deadline
     * (CNTV_CVAL_EL0 against the host counter less the vtimer offset), an interrupt jkrun raises, a CPU_ON or an exit
     * request, and at most {@link #MAX_IDLE_NANOS}; not at all if a wake-up came since the guest last entered, or the
     * timer has fired already.
     */
    private void idle() {
        if (vm.wakeups() != enteredAt || exitRequested.get()) {
            return;
        }
        long nanos = MAX_IDLE_NANOS;
        long ctl = calls.getSysReg(handle, HvfRegs.CNTV_CTL_EL0);
        if ((ctl & (CNTV_ENABLE | CNTV_IMASK)) == CNTV_ENABLE) {
            if ((ctl & CNTV_ISTATUS) != 0) {
                return;
            }
            long left = calls.getSysReg(handle, HvfRegs.CNTV_CVAL_EL0) - (calls.hostCounter() - vtimerOffset);
            if (left <= 0) {
                return;
            }
            nanos = Math.min(nanos, calls.counterNanos(left));
        }
        vm.idle(enteredAt, nanos, exitRequested::get);
    }

    /** HVC or SMC: #0 is PSCI (SMCCC); another immediate is no call jkrun offers. */
    private int call(long esr) {
        if (Esr.callImmediate(esr) != 0) {
            calls.setReg(handle, HvfRegs.X0, Psci.NOT_SUPPORTED);
            return HANDLED;
        }
        return psci();
    }

    private int psci() {
        Psci.Outcome o = Psci.call(calls.getReg(handle, HvfRegs.X0), calls.getReg(handle, HvfRegs.X0 + 1),
                calls.getReg(handle, HvfRegs.X0 + 2), calls.getReg(handle, HvfRegs.X0 + 3), vm);
        if (o instanceof Psci.Outcome.Result r) {
            calls.setReg(handle, HvfRegs.X0, r.x0());
            return HANDLED;
        }
        if (o instanceof Psci.Outcome.CpuOff) {
            synchronized (vm) {
                power = POWER_OFF;
            }
            running = false;
            return HANDLED;
        }
        int type = o instanceof Psci.Outcome.SystemReset ? VcpuExit.SystemEvent.RESET : VcpuExit.SystemEvent.SHUTDOWN;
        last = new VcpuExit.SystemEvent(type, new long[0]);
        return EXIT_OTHER;
    }

    private void checkOwner() {
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("vCPU " + id + " belongs to thread " + owner.getName()
                    + " (Hypervisor.framework binds a vCPU to the thread that made it)");
        }
    }

    // ---- the last exit ----------------------------------------------------------------------------------------

    @Override
    public int ioPort() { throw new UnsupportedOperationException("arm64 has no port I/O"); }

    @Override
    public int ioSize() { throw new UnsupportedOperationException("arm64 has no port I/O"); }

    @Override
    public int ioCount() { throw new UnsupportedOperationException("arm64 has no port I/O"); }

    @Override
    public long mmioAddress() { return mmioAddress; }

    @Override
    public int dataLength() { return mmioLength; }

    /** The write's bytes, little-endian as the guest's register held them. */
    @Override
    public void exitData(int from, byte[] dst) {
        if (from < 0 || dst.length > mmioLength - from) {
            throw new IndexOutOfBoundsException(from + "+" + dst.length + " of " + mmioLength);
        }
        for (int i = 0; i < dst.length; i++) {
            dst[i] = (byte) (mmioData >>> (8 * (from + i)));
        }
    }

    @Override
    public void completeRead(int at, byte[] src) {
        if (at < 0 || src.length > mmioLength - at) {
            throw new IndexOutOfBoundsException(at + "+" + src.length + " of " + mmioLength);
        }
        for (int i = 0; i < src.length; i++) {
            int shift = 8 * (at + i);
            mmioData = (mmioData & ~(0xFFL << shift)) | ((src[i] & 0xFFL) << shift);
        }
    }

    @Override
    public VcpuExit lastExit() {
        if (lastKind == EXIT_MMIO_READ) {
            return new VcpuExit.MmioRead(mmioAddress, mmioLength);
        }
        if (lastKind == EXIT_MMIO_WRITE) {
            byte[] data = new byte[mmioLength];
            exitData(0, data);
            return new VcpuExit.MmioWrite(mmioAddress, data);
        }
        return last;
    }

    /** Signals do not reach a Hypervisor.framework vCPU: {@link #requestExit()} does. */
    @Override
    public void setSignalMask(byte[] kernelSigset) { }

    @Override
    public void threadEnding() {
        synchronized (this) {
            if (!created || destroyed || Thread.currentThread() != owner) {
                return;
            }
            destroyed = true;
        }
        calls.vcpuDestroy(handle);
    }

    @Override
    public void close() { }

    // ---- Arm64Registers -------------------------------------------------------------------------------------

    @Override
    public long read(Register register) {
        if (!created || destroyed) {
            throw new IllegalStateException("vCPU " + id + " is not running");
        }
        checkOwner();
        return switch (register) {
            case PC -> calls.getReg(handle, HvfRegs.PC);
            case PSTATE -> calls.getReg(handle, HvfRegs.CPSR);
            case X0 -> calls.getReg(handle, HvfRegs.X0);
            case X30 -> calls.getReg(handle, HvfRegs.X30);
            case SP_EL1 -> calls.getSysReg(handle, HvfRegs.SP_EL1);
            case ELR_EL1 -> calls.getSysReg(handle, HvfRegs.ELR_EL1);
            case ESR_EL1 -> calls.getSysReg(handle, HvfRegs.ESR_EL1);
            case FAR_EL1 -> calls.getSysReg(handle, HvfRegs.FAR_EL1);
            case SCTLR_EL1 -> calls.getSysReg(handle, HvfRegs.SCTLR_EL1);
        };
    }
}
