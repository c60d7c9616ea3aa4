package dev.jkrun.devices.fs.dax;

import dev.jkrun.devices.fs.Errnos;
import dev.jkrun.devices.fs.FsException;
import dev.jkrun.libc.AnonymousMapping;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;

/**
 * A DAX window backed by one host mapping that a KVM memory slot covers: unmapped ranges are private zeroed
 * memory, mapped ranges are the host file (MAP_FIXED over the range, so the slot sees them at once). Ranges come in
 * 2 MiB granules ({@link #GRANULE}, what Linux maps: fs/fuse/dax.c FUSE_DAX_SZ), which bounds the host mappings a
 * guest can split the window into (each is a VMA of the process, which every VM in the JVM shares). A guest access
 * past the end of a mapped file is the guest's own fault: KVM cannot fault the page in and stops that vCPU, as it
 * would under virtiofsd; nothing in the VMM reads the window.
 */
public final class HostDaxWindow implements DaxWindow {
    /** The mapping granule: offsets and lengths are multiples of it (FUSE_INIT's map_alignment is its log2). */
    public static final long GRANULE = 2L << 20;
    public static final int GRANULE_SHIFT = 21;
    private static final long PAGE = GRANULE;
    private final AnonymousMapping mapping;
    private final long guestAddress;

    /** {@code mapping} is the window's host memory (owned from here on), placed at {@code guestAddress}. */
    public HostDaxWindow(AnonymousMapping mapping, long guestAddress) {
        this.mapping = mapping;
        this.guestAddress = guestAddress;
    }

    @Override
    public long guestAddress() { return guestAddress; }

    @Override
    public long size() { return mapping.size(); }

    @Override
    public int alignmentShift() { return GRANULE_SHIFT; }

    /** The host mapping, for the KVM memory slot. */
    public AnonymousMapping mapping() { return mapping; }

    private void check(long windowOffset, long length) throws FsException {
        if ((windowOffset & (PAGE - 1)) != 0 || (length & (PAGE - 1)) != 0 || length == 0
                || Long.compareUnsigned(windowOffset, size()) >= 0 || Long.compareUnsigned(length, size() - windowOffset) > 0) {
            throw new FsException(Errnos.EINVAL, "window range [" + Long.toUnsignedString(windowOffset) + ", +"
                    + Long.toUnsignedString(length) + ") not in 2 MiB granules or outside " + size() + " bytes");
        }
    }

    @Override
    public void mapFile(FileDescriptor fd, long fileOffset, long windowOffset, long length, boolean writable)
            throws FsException {
        check(windowOffset, length);
        if (fileOffset < 0 || (fileOffset & (PAGE - 1)) != 0 || fileOffset > Long.MAX_VALUE - length) {
            throw new FsException(Errnos.EINVAL, "file offset " + Long.toUnsignedString(fileOffset));
        }
        try {
            mapping.mapFileAt(windowOffset, fd, fileOffset, length, writable);
        } catch (NativeCallException e) {
            throw new FsException(e.errno(), e.getMessage());
        }
    }

    @Override
    public void mapBytes(byte[] content, long contentOffset, long windowOffset, long length) throws FsException {
        check(windowOffset, length);
        if (contentOffset < 0) {
            throw new FsException(Errnos.EINVAL, "offset " + Long.toUnsignedString(contentOffset));
        }
        int count = contentOffset < content.length ? (int) Math.min(length, content.length - contentOffset) : 0;
        mapping.resetAndWrite(windowOffset, length, content, count == 0 ? 0 : (int) contentOffset, count);
    }

    @Override
    public void unmap(long windowOffset, long length) throws FsException {
        if (windowOffset == 0 && length == -1) {
            unmapAll();
            return;
        }
        check(windowOffset, length);
        mapping.resetAt(windowOffset, length);
    }

    @Override
    public void unmapAll() { mapping.resetAt(0, size()); }

    @Override
    public void close() { mapping.close(); }
}
