package dev.jkrun.hvf;

/**
 * Hypervisor.framework as the hvf module calls it: one method per framework function, typed, every failure an
 * {@link HvfException} naming the call. {@link NativeHvf} binds the framework (macOS only); tests put a fake behind
 * it that replays exits. The vCPU calls must come from the thread that created the vCPU, as the framework requires.
 */
public interface HvfCalls {
    // ---- the process's VM ---------------------------------------------------------------------------------

    /**
     * hv_vm_create, asking for an IPA space of {@code ipaBits} where the framework lets one choose (macOS 13);
     * returns the IPA bits the VM has.
     */
    int vmCreate(int ipaBits);

    /** hv_vm_destroy. */
    void vmDestroy();

    /** hv_vm_map of {@code size} bytes at host address {@code host} to guest-physical {@code ipa}, read/write/execute. */
    void vmMap(long host, long ipa, long size);

    /** hv_vm_unmap. */
    void vmUnmap(long ipa, long size);

    /** hv_vm_get_max_vcpu_count. */
    int maxVcpus();

    // ---- the framework's GIC (macOS 15) --------------------------------------------------------------------

    /** Whether this macOS has the hv_gic_* functions. */
    boolean hasGic();

    /** hv_gic_get_distributor_size. */
    long gicDistributorSize();

    /** hv_gic_get_redistributor_size: one vCPU's frames. */
    long gicRedistributorSize();

    /** hv_gic_get_distributor_base_alignment. */
    long gicDistributorAlignment();

    /** hv_gic_get_redistributor_base_alignment. */
    long gicRedistributorAlignment();

    /** hv_gic_get_spi_interrupt_range: {first INTID, count}. */
    int[] gicSpiRange();

    /** hv_gic_config_create, the two bases set, hv_gic_create. */
    void gicCreate(long distributor, long redistributors);

    /** hv_gic_set_spi. */
    void gicSetSpi(int intid, boolean level);

    // ---- vCPUs (each on its own thread) --------------------------------------------------------------------

    /** hv_vcpu_create on the calling thread; returns the vCPU's handle. */
    long vcpuCreate();

    /** hv_vcpu_destroy, on the creating thread. */
    void vcpuDestroy(long vcpu);

    /** hv_vcpu_run until the next exit. */
    void vcpuRun(long vcpu);

    /** hv_vcpus_exit of one vCPU, from any thread. */
    void vcpuRequestExit(long vcpu);

    /** The last exit's hv_exit_reason_t. */
    int exitReason(long vcpu);

    /** The last exception exit's syndrome (ESR_EL2). */
    long exitSyndrome(long vcpu);

    /** The last exception exit's guest-physical address (the faulting IPA of a data abort). */
    long exitPhysicalAddress(long vcpu);

    /** hv_vcpu_get_reg. */
    long getReg(long vcpu, int reg);

    /** hv_vcpu_set_reg. */
    void setReg(long vcpu, int reg, long value);

    /** hv_vcpu_get_sys_reg. */
    long getSysReg(long vcpu, int reg);

    /** hv_vcpu_set_sys_reg. */
    void setSysReg(long vcpu, int reg, long value);

    /** hv_vcpu_set_vtimer_mask. */
    void setVtimerMask(long vcpu, boolean masked);

    /** hv_vcpu_get_vtimer_offset: what the host counter minus it gives the guest's virtual counter. */
    long getVtimerOffset(long vcpu);

    /** The host's counter (mach_absolute_time; the counter the guest's timer counts, before its offset). */
    long hostCounter();

    /** {@code ticks} of {@link #hostCounter()} in nanoseconds (mach_timebase_info). */
    long counterNanos(long ticks);

    // ---- the host ------------------------------------------------------------------------------------------

    /** sysctl kern.hv_support: 1 where this Mac (or macOS VM) offers virtualization, 0 where not, -1 unreadable. */
    int hvSupport();
}
