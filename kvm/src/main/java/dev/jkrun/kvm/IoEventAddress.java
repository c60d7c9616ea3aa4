package dev.jkrun.kvm;

/** The address space an ioeventfd watches. */
public enum IoEventAddress {
    /** x86 port I/O (OUT instructions). */
    PIO,
    /** Memory-mapped I/O (guest writes to an address outside every memory slot). */
    MMIO
}
