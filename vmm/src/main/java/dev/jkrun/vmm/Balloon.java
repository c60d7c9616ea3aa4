package dev.jkrun.vmm;

import java.util.Map;

/**
 * A running VM's virtio-balloon ({@link VirtualMachine#balloon()}): the host's target and what the guest reports. All
 * page counts are 4 KiB pages.
 */
public interface Balloon {
    /**
     * Asks the guest to hold {@code pages} pages in the balloon (virtio-balloon num_pages, at most 2^32 - 1) and
     * interrupts it (config change); the guest's driver inflates or deflates toward it at its own pace, and pages it
     * inflates are given back to the host.
     */
    void setTargetPages(long pages);

    /** The target last set (0 until then). */
    long targetPages();

    /** Pages the guest's driver says the balloon holds. */
    long actualPages();

    /** Bytes of free memory the guest reported (free page reporting) and the host discarded, since boot. */
    long reportedBytes();

    /** Bytes given back to the host through reporting and inflation, since boot. */
    long discardedBytes();

    /** PFNs and ranges the guest sent that were not guest RAM, ignored, since boot. */
    long rejected();

    /** The guest's latest memory statistics (virtio 1.2 §5.5.6.3 tag to value; empty until it sends some). */
    Map<Integer, Long> stats();

    /** Asks the guest for fresh statistics; false when it has posted no stats buffer to answer with. */
    boolean requestStats();
}
