package dev.jkrun.kvm;

import dev.jkrun.hypervisor.VcpuExit;
import static dev.jkrun.kvm.KvmRunLayout.*;

import dev.jkrun.libc.Errno;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.Ioctl;
import dev.jkrun.libc.NativeCallException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import dev.jkrun.libc.NativeBuffer;

/**
 * A vCPU fd and its mmapped kvm_run page.
 *
 * <p>Not thread-safe: a Vcpu belongs to the one thread that calls {@link #run()}; it reuses per-vCPU native
 * buffers for the register ioctls and remembers the pending IN/MMIO read between {@link #run()} and
 * {@link #completeRead}. Other threads stop it with {@code ThreadKick.kick}, not through this object. Close it
 * from its own thread, or after that thread has stopped: the kvm_run page is unmapped on close.
 */
public final class Vcpu implements dev.jkrun.hypervisor.Hypervisor.Vcpu, dev.jkrun.hypervisor.Arm64Registers {
    private static final VcpuExit HLT = new VcpuExit.Hlt(), SHUTDOWN = new VcpuExit.Shutdown(),
            INTERRUPTED = new VcpuExit.Interrupted();
    private static final int PENDING_NONE = 0, PENDING_READ = 1;

    private final int id;
    private final FileDescriptor fd;
    private final long runAddress;
    private final int runSize;
    /** kvm_run, read field by field on every exit (no copies on the hot path). */
    private final NativeBuffer run;
    private final AtomicBoolean closed = new AtomicBoolean();
    // Reused ioctl argument buffers, allocated on first use.
    private NativeBuffer regsBuf, sregsBuf, fpuBuf, lapicBuf, smallBuf;
    // Whether the last exit asked for a read (its data goes to dataOffset, dataLength bytes).
    private int pending = PENDING_NONE;

    Vcpu(int id, FileDescriptor fd, int runSize) {
        this.id = id;
        this.fd = fd;
        this.runSize = runSize;
        this.runAddress = Ioctl.mapShared(fd, runSize, "kvm_run of vCPU " + id);
        this.run = Ioctl.wrap(runAddress, runSize);
    }

    @Override
    public int id() { return id; }

    // ---- registers --------------------------------------------------------------------------------------

    public Regs getRegs() { return getRegs(new Regs()); }

    /** KVM_GET_REGS into {@code into} (no allocation). */
    public Regs getRegs(Regs into) {
        NativeBuffer p = regsBuf();
        Ioctl.call(fd, "KVM_GET_REGS", KvmIoctls.KVM_GET_REGS, p);
        return RegsLayout.read(p, into);
    }

    public void setRegs(Regs r) {
        NativeBuffer p = regsBuf();
        RegsLayout.write(p, r);
        Ioctl.call(fd, "KVM_SET_REGS", KvmIoctls.KVM_SET_REGS, p);
    }

    public Sregs getSregs() { return getSregs(new Sregs()); }

    public Sregs getSregs(Sregs into) {
        NativeBuffer p = sregsBuf();
        Ioctl.call(fd, "KVM_GET_SREGS", KvmIoctls.KVM_GET_SREGS, p);
        return SregsLayout.read(p, into);
    }

    public void setSregs(Sregs s) {
        NativeBuffer p = sregsBuf();
        SregsLayout.write(p, s);
        Ioctl.call(fd, "KVM_SET_SREGS", KvmIoctls.KVM_SET_SREGS, p);
    }

    public Fpu getFpu() {
        NativeBuffer p = fpuBuf();
        Ioctl.call(fd, "KVM_GET_FPU", KvmIoctls.KVM_GET_FPU, p);
        return FpuLayout.read(p);
    }

    public void setFpu(Fpu f) {
        NativeBuffer p = fpuBuf();
        FpuLayout.write(p, f);
        Ioctl.call(fd, "KVM_SET_FPU", KvmIoctls.KVM_SET_FPU, p);
    }

    public LapicState getLapic() {
        NativeBuffer p = lapicBuf();
        Ioctl.call(fd, "KVM_GET_LAPIC", KvmIoctls.KVM_GET_LAPIC, p);
        LapicState s = new LapicState();
        p.get(0, s.regs, 0, LapicState.SIZE);
        return s;
    }

    /** KVM_SET_LAPIC; needs the in-kernel irqchip (EINVAL/ENXIO otherwise). */
    public void setLapic(LapicState s) {
        NativeBuffer p = lapicBuf();
        p.put(0, s.regs, 0, LapicState.SIZE);
        Ioctl.call(fd, "KVM_SET_LAPIC", KvmIoctls.KVM_SET_LAPIC, p);
    }

    /** KVM_GET_MP_STATE: KVM_MP_STATE_RUNNABLE (0), UNINITIALIZED (1), INIT_RECEIVED (2), HALTED (3), ... */
    public int getMpState() {
        NativeBuffer p = smallBuf();
        Ioctl.call(fd, "KVM_GET_MP_STATE", KvmIoctls.KVM_GET_MP_STATE, p);
        return p.getInt(0);
    }

    public void setMpState(int state) {
        NativeBuffer p = smallBuf();
        p.putInt(0, state);
        Ioctl.call(fd, "KVM_SET_MP_STATE", KvmIoctls.KVM_SET_MP_STATE, p);
    }

    // ---- CPUID, MSRs, signal mask -----------------------------------------------------------------------

    /** KVM_SET_CPUID2 with all of {@code entries} (usually a filtered {@link Kvm#supportedCpuid()}). */
    public void setCpuid(List<CpuidEntry> entries) {
        NativeBuffer p = Ioctl.allocate(ArgLayouts.CPUID2_HEADER + CpuidEntry.SIZE * entries.size());
        p.putInt(ArgLayouts.CPUID2_NENT, entries.size());
        for (int i = 0; i < entries.size(); i++) {
            CpuidEntryLayout.write(p, ArgLayouts.CPUID2_ENTRIES + (long) CpuidEntry.SIZE * i, entries.get(i));
        }
        Ioctl.call(fd, "KVM_SET_CPUID2", KvmIoctls.KVM_SET_CPUID2, p);
    }

    /**
     * KVM_SET_MSRS. KVM stops at the first MSR it rejects and returns how many it wrote; anything short of all
     * of them is a {@link KvmException} naming the rejected MSR.
     */
    public void setMsrs(List<MsrEntry> msrs) {
        NativeBuffer p = Ioctl.allocate(ArgLayouts.MSRS_HEADER + MsrEntry.SIZE * msrs.size());
        p.putInt(ArgLayouts.MSRS_NMSRS, msrs.size());
        for (int i = 0; i < msrs.size(); i++) {
            MsrEntryLayout.write(p, ArgLayouts.MSRS_ENTRIES + (long) MsrEntry.SIZE * i, msrs.get(i));
        }
        int written = Ioctl.call(fd, "KVM_SET_MSRS", KvmIoctls.KVM_SET_MSRS, p);
        if (written != msrs.size()) {
            throw new KvmException(String.format("KVM_SET_MSRS wrote %d of %d MSRs: MSR 0x%x was rejected",
                    written, msrs.size(), msrs.get(written).index()));
        }
    }

    /** KVM_GET_MSRS for {@code indices}, in that order; a {@link KvmException} names the first unreadable one. */
    public List<MsrEntry> getMsrs(int... indices) {
        NativeBuffer p = Ioctl.allocate(ArgLayouts.MSRS_HEADER + MsrEntry.SIZE * indices.length);
        p.putInt(ArgLayouts.MSRS_NMSRS, indices.length);
        for (int i = 0; i < indices.length; i++) {
            MsrEntryLayout.write(p, ArgLayouts.MSRS_ENTRIES + (long) MsrEntry.SIZE * i, new MsrEntry(indices[i], 0));
        }
        int read = Ioctl.call(fd, "KVM_GET_MSRS", KvmIoctls.KVM_GET_MSRS, p);
        if (read != indices.length) {
            throw new KvmException(String.format("KVM_GET_MSRS read %d of %d MSRs: MSR 0x%x was rejected",
                    read, indices.length, indices[read]));
        }
        List<MsrEntry> out = new ArrayList<>(indices.length);
        for (int i = 0; i < indices.length; i++) {
            out.add(MsrEntryLayout.read(p, ArgLayouts.MSRS_ENTRIES + (long) MsrEntry.SIZE * i));
        }
        return Collections.unmodifiableList(out);
    }

    /**
     * KVM_SET_SIGNAL_MASK: the signal mask in force while this vCPU is inside KVM_RUN ({@code kernelSigset} is
     * the 8-byte kernel sigset, e.g. {@code ThreadKick.maskWithoutKick()}); null removes it.
     */
    @Override
    public void setSignalMask(byte[] kernelSigset) {
        if (kernelSigset == null) {
            Ioctl.call(fd, "KVM_SET_SIGNAL_MASK", KvmIoctls.KVM_SET_SIGNAL_MASK, 0L);
            return;
        }
        if (kernelSigset.length != ArgLayouts.KERNEL_SIGSET_BYTES) {
            throw new IllegalArgumentException("kernel sigset must be 8 bytes, got " + kernelSigset.length);
        }
        NativeBuffer p = Ioctl.allocate(ArgLayouts.SIGNAL_MASK_HEADER + ArgLayouts.KERNEL_SIGSET_BYTES);
        p.putInt(ArgLayouts.SM_LEN, ArgLayouts.KERNEL_SIGSET_BYTES);
        p.put(ArgLayouts.SM_SIGSET, kernelSigset, 0, kernelSigset.length);
        Ioctl.call(fd, "KVM_SET_SIGNAL_MASK", KvmIoctls.KVM_SET_SIGNAL_MASK, p);
    }

    // ---- arm64 --------------------------------------------------------------------------------------------

    /** KVM_GET_ONE_REG of a 64-bit register ({@link Arm64Regs} names the ids). */
    public long getOneReg(long id) {
        NativeBuffer p = oneRegBuf();
        p.putLong(ArgLayouts.OR_ID, id);
        p.putLong(ArgLayouts.OR_ADDR, p.address() + ArgLayouts.ONE_REG_SIZE);
        Ioctl.call(fd, "KVM_GET_ONE_REG(0x" + Long.toHexString(id) + ")", KvmIoctls.KVM_GET_ONE_REG, p);
        return p.getLong(ArgLayouts.ONE_REG_SIZE);
    }

    /** KVM_SET_ONE_REG of a 64-bit register. */
    public void setOneReg(long id, long value) {
        NativeBuffer p = oneRegBuf();
        p.putLong(ArgLayouts.OR_ID, id);
        p.putLong(ArgLayouts.OR_ADDR, p.address() + ArgLayouts.ONE_REG_SIZE);
        p.putLong(ArgLayouts.ONE_REG_SIZE, value);
        Ioctl.call(fd, "KVM_SET_ONE_REG(0x" + Long.toHexString(id) + ")", KvmIoctls.KVM_SET_ONE_REG, p);
    }

    /** An arm64 register for diagnosis, through KVM_GET_ONE_REG. */
    @Override
    public long read(Register register) {
        return getOneReg(switch (register) {
            case PC -> Arm64Regs.PC;
            case SP_EL1 -> Arm64Regs.SP_EL1;
            case PSTATE -> Arm64Regs.PSTATE;
            case X0 -> Arm64Regs.x(0);
            case X30 -> Arm64Regs.x(30);
            case ELR_EL1 -> Arm64Regs.ELR_EL1;
            case ESR_EL1 -> Arm64Regs.ESR_EL1;
            case FAR_EL1 -> Arm64Regs.FAR_EL1;
            case SCTLR_EL1 -> Arm64Regs.SCTLR_EL1;
        });
    }

    /** KVM_ARM_VCPU_INIT: the vCPU's target and features (from {@link Vm#armPreferredTarget()}), before it runs. */
    public void armInit(Vm.ArmVcpuInit init) {
        NativeBuffer p = Ioctl.allocate(ArgLayouts.VCPU_INIT_SIZE);
        init.write(p);
        Ioctl.call(fd, "KVM_ARM_VCPU_INIT", KvmIoctls.KVM_ARM_VCPU_INIT, p);
    }

    private NativeBuffer oneRegBuf;

    /** struct kvm_one_reg followed by the 8-byte value it points at. */
    private NativeBuffer oneRegBuf() {
        return oneRegBuf != null ? oneRegBuf : (oneRegBuf = Ioctl.allocate(ArgLayouts.ONE_REG_SIZE + 8));
    }

    // ---- running ----------------------------------------------------------------------------------------

    private long ioctlReturned;

    // The last exit, as enter() decoded it.
    private int kind;
    private int ioPort, ioSize, ioCount;
    private long dataOffset;
    private int dataLength;
    private long mmioAddress;

    /**
     * One KVM_RUN, allocation-free: returns which {@code EXIT_*} it was. A port or MMIO exit is then read in place
     * ({@link #ioPort}, {@link #ioSize}, {@link #ioCount}, {@link #mmioAddress}, {@link #dataLength},
     * {@link #exitData}) and a read answered with {@link #completeRead(int, byte[])}; {@link #lastExit} decodes any
     * exit as a {@link VcpuExit}. EINTR (a kick, or immediate_exit) is {@link #EXIT_INTERRUPTED} and clears
     * immediate_exit; EAGAIN is retried; any other errno is a {@link NativeCallException} naming KVM_RUN.
     */
    @Override
    public int enter() {
        while (true) {
            int rc = Ioctl.callRaw(fd, KvmIoctls.KVM_RUN, 0);
            if (rc >= 0) {
                break;
            }
            if (rc == -Errno.EINTR) {
                // An interrupted KVM_RUN may not have consumed a pending read yet (immediate_exit is checked
                // first), so the pending data stays where it is and may still be rewritten.
                run.putByte(IMMEDIATE_EXIT, (byte) 0);
                return kind = EXIT_INTERRUPTED;
            }
            if (rc != -Errno.EAGAIN) {
                throw new NativeCallException("KVM_RUN", -rc);
            }
        }
        if (PROFILE) {
            ioctlReturned = System.nanoTime();
        }
        pending = PENDING_NONE;
        switch (run.getInt(EXIT_REASON)) {
            case KVM_EXIT_IO: {
                ioSize = run.getByte(IO_SIZE) & 0xFF;
                ioPort = run.getShort(IO_PORT) & 0xFFFF;
                ioCount = run.getInt(IO_COUNT);
                long offset = run.getLong(IO_DATA_OFFSET);
                long length = (long) ioSize * (ioCount & 0xFFFF_FFFFL);
                if (offset < 0 || offset + length > runSize) {
                    throw new KvmException("KVM_EXIT_IO data outside kvm_run: offset " + offset + ", " + length
                            + " bytes, kvm_run is " + runSize);
                }
                dataOffset = offset;
                dataLength = (int) length;
                if (run.getByte(IO_DIRECTION) == KVM_EXIT_IO_OUT) {
                    return kind = EXIT_IO_OUT;
                }
                pending = PENDING_READ;
                return kind = EXIT_IO_IN;
            }
            case KVM_EXIT_MMIO: {
                mmioAddress = run.getLong(MMIO_PHYS_ADDR);
                dataOffset = MMIO_DATA;
                dataLength = Math.max(0, Math.min(run.getInt(MMIO_LEN), MMIO_DATA_MAX));
                if (run.getByte(MMIO_IS_WRITE) != 0) {
                    return kind = EXIT_MMIO_WRITE;
                }
                pending = PENDING_READ;
                return kind = EXIT_MMIO_READ;
            }
            case KVM_EXIT_INTR:
                return kind = EXIT_INTERRUPTED;
            default:
                return kind = EXIT_OTHER;
        }
    }

    /** With {@link #PROFILE}: System.nanoTime() when the last KVM_RUN returned (before its exit was decoded). */
    @Override
    public long exitReturnedNanos() { return ioctlReturned; }

    /** The last port exit's port. */
    @Override
    public int ioPort() { return ioPort; }

    /** The last port exit's access width (1, 2 or 4). */
    @Override
    public int ioSize() { return ioSize; }

    /** The last port exit's element count (more than 1 for a rep ins/outs). */
    @Override
    public int ioCount() { return ioCount; }

    /** The last MMIO exit's guest-physical address. */
    @Override
    public long mmioAddress() { return mmioAddress; }

    /** The last port or MMIO exit's data length: size × count, or the MMIO access's 0..8 bytes. */
    @Override
    public int dataLength() { return dataLength; }

    /**
     * Copies {@code dst.length} bytes of the last OUT or MMIO write's data, from byte {@code from} of it, into
     * {@code dst}. Throws if that runs past the data.
     */
    @Override
    public void exitData(int from, byte[] dst) {
        if (from < 0 || from > dataLength - dst.length || (kind != EXIT_IO_OUT && kind != EXIT_MMIO_WRITE)) {
            throw new IllegalStateException("vCPU " + id + ": no " + dst.length + " bytes at " + from + " of the last exit's data");
        }
        long at = dataOffset + from;
        for (int i = 0; i < dst.length; i++) { // at most 8 bytes but for a rep outs: byte reads beat a native copy
            dst[i] = run.getByte(at + i);
        }
    }

    /**
     * Answers part of the pending IN or MMIO read: {@code src} into the data at byte {@code at} (for a rep ins,
     * element i is at i × size). Throws without a pending read or past its data.
     */
    @Override
    public void completeRead(int at, byte[] src) {
        ensureOpen();
        if (pending != PENDING_READ) {
            throw new IllegalStateException("vCPU " + id + ": completeRead without a pending IoIn or MmioRead exit");
        }
        if (at < 0 || at > dataLength - src.length) {
            throw new IllegalStateException("vCPU " + id + ": " + src.length + " bytes at " + at + " past the read's " + dataLength);
        }
        long to = dataOffset + at;
        for (int i = 0; i < src.length; i++) {
            run.putByte(to + i, src[i]);
        }
    }

    /** The last exit as a {@link VcpuExit} (allocates; for the rare exits, and for {@link #run()}). */
    @Override
    public VcpuExit lastExit() {
        switch (kind) {
            case EXIT_INTERRUPTED:
                return INTERRUPTED;
            case EXIT_IO_OUT: {
                byte[] data = new byte[dataLength];
                run.get(dataOffset, data, 0, data.length);
                return new VcpuExit.IoOut(ioPort, ioSize, ioCount, data);
            }
            case EXIT_IO_IN:
                return new VcpuExit.IoIn(ioPort, ioSize, ioCount);
            case EXIT_MMIO_WRITE: {
                byte[] data = new byte[dataLength];
                run.get(dataOffset, data, 0, data.length);
                return new VcpuExit.MmioWrite(mmioAddress, data);
            }
            case EXIT_MMIO_READ:
                return new VcpuExit.MmioRead(mmioAddress, dataLength);
            default:
                break;
        }
        int reason = run.getInt(EXIT_REASON);
        switch (reason) {
            case KVM_EXIT_HLT:
                return HLT;
            case KVM_EXIT_SHUTDOWN:
                return SHUTDOWN;
            case KVM_EXIT_SYSTEM_EVENT: {
                int n = Math.min(run.getInt(SYSTEM_EVENT_NDATA), SYSTEM_EVENT_DATA_MAX);
                return new VcpuExit.SystemEvent(run.getInt(SYSTEM_EVENT_TYPE), readLongs(SYSTEM_EVENT_DATA, n));
            }
            case KVM_EXIT_INTERNAL_ERROR: {
                int n = Math.min(run.getInt(INTERNAL_NDATA), INTERNAL_DATA_MAX);
                return new VcpuExit.InternalError(run.getInt(INTERNAL_SUBERROR), readLongs(INTERNAL_DATA, n));
            }
            case KVM_EXIT_FAIL_ENTRY:
                return new VcpuExit.FailEntry(run.getLong(FAIL_ENTRY_REASON), run.getInt(FAIL_ENTRY_CPU));
            case KVM_EXIT_IOAPIC_EOI:
                return new VcpuExit.IoapicEoi(run.getByte(EOI_VECTOR) & 0xFF);
            case KVM_EXIT_ARM_NISV:
                return new VcpuExit.DataAbortWithoutSyndrome(run.getLong(NISV_FAULT_IPA), run.getLong(NISV_ESR_ISS));
            case KVM_EXIT_DEBUG:
                return new VcpuExit.Debug(run.getInt(DEBUG_EXCEPTION), run.getLong(DEBUG_PC), run.getLong(DEBUG_DR6),
                        run.getLong(DEBUG_DR7));
            default:
                return new VcpuExit.Unknown(reason);
        }
    }

    /**
     * One KVM_RUN, decoded as a {@link VcpuExit} ({@link #enter()} then {@link #lastExit()}). A pending IN/MMIO read
     * must have been answered with {@link #completeRead} before this call: KVM finishes the instruction from the
     * data left in kvm_run.
     */
    @Override
    public VcpuExit run() {
        enter();
        return lastExit();
    }

    /**
     * Answers the last exit's {@link VcpuExit.IoIn} or {@link VcpuExit.MmioRead}: copies {@code data} into kvm_run
     * for the next {@link #run()}. A shorter array is zero-extended and extra bytes are ignored, so a device that
     * answers the wrong width cannot corrupt kvm_run.
     *
     * @throws IllegalStateException when the last exit was not a read
     */
    public void completeRead(byte[] data) {
        ensureOpen();
        if (pending != PENDING_READ) {
            throw new IllegalStateException("vCPU " + id + ": completeRead without a pending IoIn or MmioRead exit");
        }
        int n = Math.min(data.length, dataLength);
        run.put(dataOffset, data, 0, n);
        if (n < dataLength) {
            run.clear(dataOffset + n, dataLength - n);
        }
    }

    /** kvm_run.immediate_exit: while set, KVM_RUN returns EINTR at once instead of entering the guest. */
    public void setImmediateExit(boolean on) {
        ensureOpen();
        run.putByte(IMMEDIATE_EXIT, (byte) (on ? 1 : 0));
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            Ioctl.unmap(runAddress, runSize);
            fd.close();
        }
    }

    @Override
    public String toString() { return "Vcpu[" + id + "]"; }

    private void ensureOpen() {
        if (closed.get()) {
            throw new IllegalStateException("vCPU " + id + " is closed");
        }
    }

    private long[] readLongs(int at, int n) {
        long[] out = new long[Math.max(n, 0)];
        for (int i = 0; i < out.length; i++) {
            out[i] = run.getLong(at + 8L * i);
        }
        return out;
    }

    private NativeBuffer regsBuf() { return regsBuf != null ? regsBuf : (regsBuf = Ioctl.allocate(Regs.SIZE)); }

    private NativeBuffer sregsBuf() { return sregsBuf != null ? sregsBuf : (sregsBuf = Ioctl.allocate(Sregs.SIZE)); }

    private NativeBuffer fpuBuf() { return fpuBuf != null ? fpuBuf : (fpuBuf = Ioctl.allocate(Fpu.SIZE)); }

    private NativeBuffer lapicBuf() { return lapicBuf != null ? lapicBuf : (lapicBuf = Ioctl.allocate(LapicState.SIZE)); }

    private NativeBuffer smallBuf() { return smallBuf != null ? smallBuf : (smallBuf = Ioctl.allocate(8)); }
}
