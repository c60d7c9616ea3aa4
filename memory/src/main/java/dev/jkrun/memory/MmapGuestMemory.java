package dev.jkrun.memory;

import dev.jkrun.libc.AnonymousMapping;
import dev.jkrun.libc.FileDescriptor;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;

/**
 * Guest RAM in anonymous off-heap mappings, one per region, which the hypervisor layer registers as memory
 * slots. {@link #close()} unmaps everything; any access that happens after it throws instead of touching freed
 * memory.
 * With the Unsafe accessor callers must have stopped the vCPUs and device threads first (an access already past
 * its check, or a {@link #view} in use, would touch the freed range); with FFM (JDK 22+, the default there) such an
 * access throws too, except through a {@link #window} (virtqueue rings, checked by jkrun alone with either
 * accessor), and close() waits for NIO I/O into a view before it unmaps. When a thread that may still hold such an
 * access outlived the VM, {@link #retire()} instead refuses new accesses and frees the pages but keeps the range
 * mapped.
 */
public final class MmapGuestMemory implements GuestMemory, AutoCloseable {
    /** A region and the host mapping that backs it (for KVM_SET_USER_MEMORY_REGION). */
    public record Slot(MemoryRegion region, AnonymousMapping mapping) {}

    private final List<Slot> slots;
    private final GuestMemoryImpl impl;
    private final MemoryBackend.Mapped m;
    private final FileDescriptor memfd;
    private boolean unmapped;

    private MmapGuestMemory(List<Slot> slots, GuestMemoryImpl impl, MemoryBackend.Mapped m, FileDescriptor memfd) {
        this.slots = Collections.unmodifiableList(slots);
        this.impl = impl;
        this.m = m;
        this.memfd = memfd;
    }

    /** Maps one anonymous region per entry with the {@link GuestMemoryImpl#preferred() preferred} accessor. */
    public static MmapGuestMemory create(List<MemoryRegion> regions) { return create(regions, GuestMemoryImpl.preferred()); }

    /** Maps one anonymous region per entry; on failure, releases whatever was mapped. */
    public static MmapGuestMemory create(List<MemoryRegion> regions, GuestMemoryImpl impl) {
        MemoryBackend backend = impl.backend();
        List<Slot> slots = new ArrayList<>();
        try {
            for (MemoryRegion r : regions) {
                if (!r.start().isAligned(4096) || (r.size() & 4095) != 0) {
                    throw new IllegalArgumentException("guest memory region not page-aligned: " + r);
                }
                slots.add(new Slot(r, AnonymousMapping.map(r.size())));
            }
            return new MmapGuestMemory(slots, impl, backend.mmap(slots), null);
        } catch (RuntimeException e) {
            slots.forEach(s -> s.mapping().close());
            throw e;
        }
    }

    /**
     * Guest RAM in one memfd (AVF's custom memory backing file; what vhost-user backends map): region i at the memfd
     * offset where region i − 1 ended, mapped shared. {@link #memfd()} is the descriptor; {@link #close()} closes it.
     */
    public static MmapGuestMemory createOnMemfd(List<MemoryRegion> regions, GuestMemoryImpl impl) {
        long total = 0;
        for (MemoryRegion r : regions) {
            if (!r.start().isAligned(4096) || (r.size() & 4095) != 0) {
                throw new IllegalArgumentException("guest memory region not page-aligned: " + r);
            }
            total = Math.addExact(total, r.size());
        }
        MemoryBackend backend = impl.backend();
        FileDescriptor fd = FileDescriptor.memfd("jkrun-guest-ram", total);
        List<Slot> slots = new ArrayList<>();
        try {
            long offset = 0;
            for (MemoryRegion r : regions) {
                slots.add(new Slot(r, AnonymousMapping.mapShared(fd, offset, r.size())));
                offset += r.size();
            }
            return new MmapGuestMemory(slots, impl, backend.mmap(slots), fd);
        } catch (RuntimeException e) {
            slots.forEach(s -> s.mapping().close());
            fd.close();
            throw e;
        }
    }

    /** The memfd that holds guest RAM, when it was made with {@link #createOnMemfd}. */
    public Optional<FileDescriptor> memfd() { return Optional.ofNullable(memfd); }

    /** Where guest physical {@code address} lies in {@link #memfd()}: the regions follow each other there. */
    public long memfdOffset(GuestAddress address) {
        long offset = 0;
        for (Slot s : slots) {
            if (s.region().contains(address.value(), 1)) {
                return offset + (address.value() - s.region().start().value());
            }
            offset += s.region().size();
        }
        throw new GuestMemoryException(GuestMemoryException.Reason.OUT_OF_BOUNDS, address, 1);
    }

    public List<Slot> slots() { return slots; }

    /** The accessor behind this memory. */
    public GuestMemoryImpl impl() { return impl; }

    /**
     * Refuses every further access and gives the pages back to the host, keeping the address ranges mapped (zeros
     * from now on) so that a thread still copying into or out of them cannot fault. {@link #close()} unmaps later.
     */
    public synchronized void retire() {
        m.retire();
        if (!unmapped) {
            slots.forEach(s -> s.mapping().discardPages());
        }
    }

    /**
     * Refuses every further access and unmaps. If the FFM accessor cannot end an NIO operation's hold on a view in
     * time, this throws and leaves everything mapped (a leak, never an unmap under a syscall); a later close retries.
     */
    @Override
    public synchronized void close() {
        if (!unmapped) {
            m.release();
            unmapped = true;
            slots.forEach(s -> s.mapping().close());
            if (memfd != null) {
                memfd.close();
            }
        }
    }

    /**
     * MADV_DONTNEED on the host mapping of the whole pages in {@code [addr, addr+len)}: the host RSS falls at once.
     * Refused (0) once retired or closed; the mapping's own lock keeps it off a range being unmapped.
     */
    @Override
    public long discard(GuestAddress addr, long len) {
        long[] pages = GuestMemory.wholePages(this, addr, len);
        if (pages[1] == 0) {
            return 0;
        }
        for (Slot s : slots) {
            if (s.region().contains(pages[0], pages[1])) {
                return s.mapping().discard(pages[0] - s.region().start().value(), pages[1]) ? pages[1] : 0;
            }
        }
        throw new GuestMemoryException(GuestMemoryException.Reason.OUT_OF_BOUNDS, addr, len);
    }

    @Override
    public List<MemoryRegion> regions() { return m.regions(); }

    @Override
    public boolean contains(GuestAddress addr, long len) { return m.contains(addr, len); }

    @Override
    public byte readByte(GuestAddress addr) { return m.readByte(addr); }

    @Override
    public short readShort(GuestAddress addr) { return m.readShort(addr); }

    @Override
    public int readInt(GuestAddress addr) { return m.readInt(addr); }

    @Override
    public long readLong(GuestAddress addr) { return m.readLong(addr); }

    @Override
    public void writeByte(GuestAddress addr, byte value) { m.writeByte(addr, value); }

    @Override
    public void writeShort(GuestAddress addr, short value) { m.writeShort(addr, value); }

    @Override
    public void writeInt(GuestAddress addr, int value) { m.writeInt(addr, value); }

    @Override
    public void writeLong(GuestAddress addr, long value) { m.writeLong(addr, value); }

    @Override
    public short readShortAcquire(GuestAddress addr) { return m.readShortAcquire(addr); }

    @Override
    public void writeShortRelease(GuestAddress addr, short value) { m.writeShortRelease(addr, value); }

    @Override
    public void fullFence() { m.fullFence(); }

    @Override
    public void read(GuestAddress addr, byte[] dst, int offset, int length) { m.read(addr, dst, offset, length); }

    @Override
    public void write(GuestAddress addr, byte[] src, int offset, int length) { m.write(addr, src, offset, length); }

    @Override
    public void read(GuestAddress addr, ByteBuffer dst) { m.read(addr, dst); }

    @Override
    public void write(GuestAddress addr, ByteBuffer src) { m.write(addr, src); }

    @Override
    public void fill(GuestAddress addr, long length, byte value) { m.fill(addr, length, value); }

    @Override
    public ByteBuffer view(GuestAddress addr, int length) { return m.view(addr, length); }

    @Override
    public GuestWindow window(GuestAddress addr, long len) { return m.window(addr, len); }
}
