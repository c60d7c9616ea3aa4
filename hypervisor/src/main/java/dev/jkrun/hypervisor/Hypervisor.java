package dev.jkrun.hypervisor;

import dev.jkrun.libc.AnonymousMapping;
import dev.jkrun.libc.EventFd;
import dev.jkrun.memory.GuestAddress;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * A hypervisor as the VMM sees it, whatever the host (cloud-hypervisor's {@code hypervisor} crate draws the same
 * line): it makes VMs, a VM takes guest memory and makes vCPUs, a vCPU runs until an exit. KVM ({@code kvm}) is the
 * first implementation, Hypervisor.framework ({@code hvf}) the second. What only one architecture has (x86's TSS and
 * PIT, CPUID and MSRs; aarch64's vCPU init and GIC) stays on the implementation's own types, which the architecture's
 * platform code uses directly.
 */
public interface Hypervisor extends AutoCloseable {
    /** "KVM", "Hypervisor.framework": for messages. */
    String name();

    /** Throws naming the first capability jkrun needs and this host's hypervisor lacks. */
    void requireCapabilities();

    /** The vCPUs one VM may have on this host. */
    int maxVcpus();

    /** A new, empty VM. */
    Vm createVm();

    @Override
    void close();

    /** One VM: memory slots, interrupt lines, vCPUs. The calls are safe from any thread. */
    interface Vm extends AutoCloseable {
        /** Maps all of {@code mapping} as guest-physical memory from {@code at}, in slot {@code slot}. */
        void mapMemory(int slot, GuestAddress at, AnonymousMapping mapping);

        /** Removes slot {@code slot}. */
        void unmapMemory(int slot);

        /** A new vCPU with id {@code id} (0 is the boot CPU). */
        Vcpu createVcpu(int id);

        /**
         * Notifications the hypervisor delivers without an exit, where it has them (KVM's ioeventfd and irqfd); empty
         * where the VMM must do both itself (the transport then works from MMIO exits alone).
         */
        Optional<IoEvents> ioEvents();

        /** The aarch64 side of this VM, where the host is aarch64. */
        default Optional<Arm64Vm> arm64() { return Optional.empty(); }

        @Override
        void close();
    }

    /** Guest writes that signal an eventfd without a vCPU exit, and eventfds that raise interrupt lines. */
    interface IoEvents {
        /**
         * A guest write of {@code length} bytes (1, 2, 4 or 8) to MMIO address {@code address} signals {@code fd}
         * instead of exiting; with {@code datamatch}, only writes of that value do.
         */
        void registerMmioNotify(EventFd fd, long address, int length, OptionalLong datamatch);

        /** A signal on {@code fd} raises interrupt {@code gsi} (an edge; the platform says what a gsi is). */
        void registerIrqfd(EventFd fd, int gsi);
    }

    /**
     * One vCPU, owned by the one thread that runs it. {@link #enter()} runs it until an exit and says which kind;
     * port and MMIO exits are then read and answered in place without allocating, the rest decoded by
     * {@link #lastExit()}.
     */
    interface Vcpu extends AutoCloseable {
        /** What {@link #enter()} returns: the exits the vCPU loop handles in place, and everything else. */
        int EXIT_OTHER = 0, EXIT_IO_OUT = 1, EXIT_IO_IN = 2, EXIT_MMIO_WRITE = 3, EXIT_MMIO_READ = 4, EXIT_INTERRUPTED = 5;

        /**
         * {@code -Djkrun.exitProfile=true}: {@link #enter()} notes when the hypervisor returned
         * ({@link #exitReturnedNanos}), so that a benchmark can split an exit's cost. Off, the check compiles away.
         */
        boolean PROFILE = Boolean.getBoolean("jkrun.exitProfile");

        int id();

        /**
         * Runs the vCPU until its next exit; returns which {@code EXIT_*} it was. {@link #EXIT_INTERRUPTED}: a kick
         * (or a pending one) made it return without a guest exit.
         */
        int enter();

        /** With {@link #PROFILE}: System.nanoTime() when the hypervisor last returned, before the exit was decoded. */
        default long exitReturnedNanos() { return 0; }

        /** The last port exit's port. */
        int ioPort();

        /** The last port exit's access width (1, 2 or 4). */
        int ioSize();

        /** The last port exit's element count (more than 1 for a rep ins/outs). */
        int ioCount();

        /** The last MMIO exit's guest-physical address. */
        long mmioAddress();

        /** The last port or MMIO exit's data length: size × count, or the MMIO access's 0..8 bytes. */
        int dataLength();

        /** Copies {@code dst.length} bytes of the last OUT or MMIO write's data, from byte {@code from} of it. */
        void exitData(int from, byte[] dst);

        /** Answers part of the pending IN or MMIO read: {@code src} into its data at byte {@code at}. */
        void completeRead(int at, byte[] src);

        /** The last exit as a {@link VcpuExit} (allocates: for the rare exits). */
        VcpuExit lastExit();

        /** {@link #enter()} then {@link #lastExit()}. */
        default VcpuExit run() {
            enter();
            return lastExit();
        }

        /**
         * The signal mask in force while the vCPU runs (an 8-byte kernel sigset): how a kick reaches a running vCPU
         * on Linux. Null removes it.
         */
        void setSignalMask(byte[] kernelSigset);

        /**
         * Whether {@link #requestExit()} reaches this vCPU through the hypervisor (Hypervisor.framework's
         * hv_vcpus_exit); false where the VMM interrupts the thread with a signal instead (KVM).
         */
        default boolean exitsOnRequest() { return false; }

        /**
         * From any thread: makes {@link #enter()} return {@link #EXIT_INTERRUPTED}, now or at its next call. Only where
         * {@link #exitsOnRequest()}.
         */
        default void requestExit() {
            throw new UnsupportedOperationException("this hypervisor's vCPUs are interrupted by a signal");
        }

        /**
         * Called by the thread that ran this vCPU as it stops running it (Hypervisor.framework's vCPUs belong to the
         * thread that made them and are destroyed there).
         */
        default void threadEnding() { }

        @Override
        void close();
    }
}
