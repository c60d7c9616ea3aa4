package dev.jkrun.hvf;

import dev.jkrun.libc.NativeBuffer;
import jnr.ffi.LibraryLoader;

/**
 * Hypervisor.framework through JNR-FFI, bound only on macOS. Pointers travel as addresses of {@link NativeBuffer}s:
 * the surface is thin and typed, as libc's is. Functions a macOS lacks (the GIC before 15, the VM configuration
 * before 13) answer as missing instead of failing the whole binding.
 */
public final class NativeHvf implements HvfCalls {
    static final String FRAMEWORK = "/System/Library/Frameworks/Hypervisor.framework/Hypervisor";

    /** The framework's C functions (Hypervisor/hv_vm.h, hv_vcpu.h, hv_gic.h), as JNR binds them. */
    public interface Framework {
        int hv_vm_create(long config);
        int hv_vm_destroy();
        int hv_vm_map(long addr, long ipa, long size, long flags);
        int hv_vm_unmap(long ipa, long size);
        int hv_vm_get_max_vcpu_count(long countOut);
        long hv_vm_config_create();
        int hv_vm_config_get_max_ipa_size(long ipaBitsOut);
        int hv_vm_config_set_ipa_size(long config, int ipaBits);

        int hv_vcpu_create(long vcpuOut, long exitOut, long config);
        int hv_vcpu_destroy(long vcpu);
        int hv_vcpu_run(long vcpu);
        int hv_vcpus_exit(long vcpus, int count);
        int hv_vcpu_get_reg(long vcpu, int reg, long valueOut);
        int hv_vcpu_set_reg(long vcpu, int reg, long value);
        /** hv_sys_reg_t is uint16_t: passed as an int holding 0..0xFFFF (a Java short would arrive sign-extended). */
        int hv_vcpu_get_sys_reg(long vcpu, int reg, long valueOut);
        int hv_vcpu_set_sys_reg(long vcpu, int reg, long value);
        int hv_vcpu_get_vtimer_offset(long vcpu, long offsetOut);
        int hv_vcpu_set_vtimer_mask(long vcpu, byte masked);

        long hv_gic_config_create();
        int hv_gic_config_set_distributor_base(long config, long ipa);
        int hv_gic_config_set_redistributor_base(long config, long ipa);
        int hv_gic_create(long config);
        int hv_gic_set_spi(int intid, byte level);
        int hv_gic_get_distributor_size(long sizeOut);
        int hv_gic_get_redistributor_size(long sizeOut);
        int hv_gic_get_distributor_base_alignment(long alignmentOut);
        int hv_gic_get_redistributor_base_alignment(long alignmentOut);
        int hv_gic_get_spi_interrupt_range(long baseOut, long countOut);
    }

    /** The libSystem functions beside it. */
    public interface System {
        int sysctlbyname(String name, long oldp, long oldlenp, long newp, long newlen);
        void os_release(long object);
        long mach_absolute_time();
        int mach_timebase_info(long infoOut);
    }

    /** hv_vcpu_exit_t: hv_exit_reason_t reason (u32) at 0; the exception's syndrome, VA and IPA (u64) at 8, 16, 24. */
    private static final int EXIT_REASON = 0, EXIT_SYNDROME = 8, EXIT_IPA = 24, EXIT_SIZE = 32;

    private final Framework hv;
    private final System sys;
    /** Scratch for out-parameters, one per thread (vCPU calls come from each vCPU's own thread). */
    private final ThreadLocal<NativeBuffer> scratch = ThreadLocal.withInitial(() -> NativeBuffer.allocate(16));

    private NativeHvf(Framework hv, System sys) {
        this.hv = hv;
        this.sys = sys;
    }

    private static NativeHvf instance;

    /** The binding, made once per process (the framework's VM is the process's). */
    public static synchronized NativeHvf instance() {
        if (instance == null) {
            instance = load();
        }
        return instance;
    }

    /** Binds the framework; throws on any OS but macOS, or where it cannot be loaded. */
    static NativeHvf load() {
        if (!isMacOs()) {
            throw new UnsupportedOperationException("Hypervisor.framework exists only on macOS, not "
                    + java.lang.System.getProperty("os.name"));
        }
        return new NativeHvf(LibraryLoader.create(Framework.class).load(FRAMEWORK),
                LibraryLoader.create(System.class).load("/usr/lib/libSystem.B.dylib"));
    }

    public static boolean isMacOs() { return java.lang.System.getProperty("os.name", "").startsWith("Mac"); }

    private long out(String call, int rc) {
        HvReturn.check(call, rc);
        return scratch.get().getLong(0);
    }

    /** The IPA space of a VM made without a configuration (Hypervisor/hv_vm_config.h). */
    private static final int DEFAULT_IPA_BITS = 36;

    @Override
    public int vmCreate(int ipaBits) {
        int granted = DEFAULT_IPA_BITS;
        long config = 0;
        try {
            NativeBuffer b = scratch.get();
            b.putInt(0, 0);
            if (hv.hv_vm_config_get_max_ipa_size(b.address()) == HvReturn.SUCCESS) {
                config = hv.hv_vm_config_create();
                int bits = Math.min(ipaBits, b.getInt(0));
                HvReturn.check("hv_vm_config_set_ipa_size", hv.hv_vm_config_set_ipa_size(config, bits));
                granted = bits;
            }
            HvReturn.check("hv_vm_create", hv.hv_vm_create(config));
            return granted;
        } catch (UnsatisfiedLinkError before13) { // no VM configuration: the default IPA space
            HvReturn.check("hv_vm_create", hv.hv_vm_create(0));
            return DEFAULT_IPA_BITS;
        } finally {
            if (config != 0) {
                sys.os_release(config);
            }
        }
    }

    @Override
    public void vmDestroy() { HvReturn.check("hv_vm_destroy", hv.hv_vm_destroy()); }

    @Override
    public void vmMap(long host, long ipa, long size) {
        HvReturn.check("hv_vm_map", hv.hv_vm_map(host, ipa, size, HvfRegs.MEMORY_RWX));
    }

    @Override
    public void vmUnmap(long ipa, long size) { HvReturn.check("hv_vm_unmap", hv.hv_vm_unmap(ipa, size)); }

    @Override
    public int maxVcpus() { return (int) outParam("hv_vm_get_max_vcpu_count", hv::hv_vm_get_max_vcpu_count); }

    @Override
    public boolean hasGic() {
        try {
            gicDistributorSize();
            return true;
        } catch (UnsatisfiedLinkError | HvfException beforeMacOs15) { // missing, or HV_UNSUPPORTED
            return false;
        }
    }

    /** Calls {@code fn} with a zeroed 8-byte out-parameter and returns what it left there. */
    private long outParam(String call, java.util.function.LongToIntFunction fn) {
        NativeBuffer b = scratch.get();
        b.putLong(0, 0);
        return out(call, fn.applyAsInt(b.address()));
    }

    @Override
    public long gicDistributorSize() { return outParam("hv_gic_get_distributor_size", hv::hv_gic_get_distributor_size); }

    @Override
    public long gicRedistributorSize() { return outParam("hv_gic_get_redistributor_size", hv::hv_gic_get_redistributor_size); }

    @Override
    public long gicDistributorAlignment() {
        return outParam("hv_gic_get_distributor_base_alignment", hv::hv_gic_get_distributor_base_alignment);
    }

    @Override
    public long gicRedistributorAlignment() {
        return outParam("hv_gic_get_redistributor_base_alignment", hv::hv_gic_get_redistributor_base_alignment);
    }

    @Override
    public int[] gicSpiRange() {
        NativeBuffer b = scratch.get();
        b.putLong(0, 0);
        b.putLong(8, 0);
        HvReturn.check("hv_gic_get_spi_interrupt_range", hv.hv_gic_get_spi_interrupt_range(b.address(), b.address() + 8));
        return new int[] {b.getInt(0), b.getInt(8)};
    }

    @Override
    public void gicCreate(long distributor, long redistributors) {
        long config = hv.hv_gic_config_create();
        try {
            HvReturn.check("hv_gic_config_set_distributor_base", hv.hv_gic_config_set_distributor_base(config, distributor));
            HvReturn.check("hv_gic_config_set_redistributor_base",
                    hv.hv_gic_config_set_redistributor_base(config, redistributors));
            HvReturn.check("hv_gic_create", hv.hv_gic_create(config));
        } finally {
            sys.os_release(config);
        }
    }

    @Override
    public void gicSetSpi(int intid, boolean level) {
        HvReturn.check("hv_gic_set_spi", hv.hv_gic_set_spi(intid, (byte) (level ? 1 : 0)));
    }

    /** Each vCPU's exit structure, by handle: the framework writes it, the vCPU's thread reads it. */
    private final java.util.concurrent.ConcurrentHashMap<Long, NativeBuffer> exits = new java.util.concurrent.ConcurrentHashMap<>();

    @Override
    public long vcpuCreate() {
        NativeBuffer b = scratch.get();
        b.putLong(0, 0);
        b.putLong(8, 0);
        HvReturn.check("hv_vcpu_create", hv.hv_vcpu_create(b.address(), b.address() + 8, 0));
        long vcpu = b.getLong(0);
        exits.put(vcpu, NativeBuffer.wrap(b.getLong(8), EXIT_SIZE));
        return vcpu;
    }

    @Override
    public void vcpuDestroy(long vcpu) {
        exits.remove(vcpu);
        HvReturn.check("hv_vcpu_destroy", hv.hv_vcpu_destroy(vcpu));
    }

    @Override
    public void vcpuRun(long vcpu) { HvReturn.check("hv_vcpu_run", hv.hv_vcpu_run(vcpu)); }

    @Override
    public void vcpuRequestExit(long vcpu) {
        NativeBuffer b = NativeBuffer.allocate(8); // any thread: not the caller's scratch of another purpose
        b.putLong(0, vcpu);
        int rc = hv.hv_vcpus_exit(b.address(), 1);
        java.lang.ref.Reference.reachabilityFence(b);
        HvReturn.check("hv_vcpus_exit", rc);
    }

    private NativeBuffer exit(long vcpu) {
        NativeBuffer e = exits.get(vcpu);
        if (e == null) {
            throw new IllegalStateException("vCPU " + vcpu + " has no exit information");
        }
        return e;
    }

    @Override
    public int exitReason(long vcpu) { return exit(vcpu).getInt(EXIT_REASON); }

    @Override
    public long exitSyndrome(long vcpu) { return exit(vcpu).getLong(EXIT_SYNDROME); }

    @Override
    public long exitPhysicalAddress(long vcpu) { return exit(vcpu).getLong(EXIT_IPA); }

    @Override
    public long getReg(long vcpu, int reg) {
        return out("hv_vcpu_get_reg(" + reg + ")", hv.hv_vcpu_get_reg(vcpu, reg, scratch.get().address()));
    }

    @Override
    public void setReg(long vcpu, int reg, long value) {
        int rc = hv.hv_vcpu_set_reg(vcpu, reg, value);
        if (rc != HvReturn.SUCCESS) {
            throw new HvfException("hv_vcpu_set_reg(" + reg + ")", rc);
        }
    }

    @Override
    public long getSysReg(long vcpu, int reg) {
        int rc = hv.hv_vcpu_get_sys_reg(vcpu, reg & 0xFFFF, scratch.get().address());
        if (rc != HvReturn.SUCCESS) {
            throw new HvfException(String.format("hv_vcpu_get_sys_reg(0x%04x)", reg), rc);
        }
        return scratch.get().getLong(0);
    }

    @Override
    public void setSysReg(long vcpu, int reg, long value) {
        int rc = hv.hv_vcpu_set_sys_reg(vcpu, reg & 0xFFFF, value);
        if (rc != HvReturn.SUCCESS) {
            throw new HvfException(String.format("hv_vcpu_set_sys_reg(0x%04x)", reg), rc);
        }
    }

    @Override
    public void setVtimerMask(long vcpu, boolean masked) {
        HvReturn.check("hv_vcpu_set_vtimer_mask", hv.hv_vcpu_set_vtimer_mask(vcpu, (byte) (masked ? 1 : 0)));
    }

    @Override
    public long getVtimerOffset(long vcpu) {
        return out("hv_vcpu_get_vtimer_offset", hv.hv_vcpu_get_vtimer_offset(vcpu, scratch.get().address()));
    }

    @Override
    public long hostCounter() { return sys.mach_absolute_time(); }

    private volatile long timebase;

    /** mach_timebase_info: numer in the high half, denom in the low (read once). */
    private long timebase() {
        long t = timebase;
        if (t == 0) {
            NativeBuffer b = NativeBuffer.allocate(8);
            int rc = sys.mach_timebase_info(b.address());
            if (rc != 0 || b.getInt(4) == 0) {
                throw new HvfException("mach_timebase_info", rc == 0 ? HvReturn.ERROR : rc);
            }
            timebase = t = ((long) b.getInt(0) << 32) | (b.getInt(4) & 0xFFFF_FFFFL);
        }
        return t;
    }

    @Override
    public long counterNanos(long ticks) {
        long t = timebase();
        return Math.multiplyHigh(ticks, t >>> 32) == 0 ? ticks * (t >>> 32) / (t & 0xFFFF_FFFFL)
                : Long.MAX_VALUE; // a deadline years away: as good as none
    }

    @Override
    public int hvSupport() {
        NativeBuffer b = NativeBuffer.allocate(16);
        b.putInt(0, 0);
        b.putLong(8, 4);
        int rc = sys.sysctlbyname("kern.hv_support", b.address(), b.address() + 8, 0, 0);
        return rc == 0 ? b.getInt(0) : -1;
    }
}
