package dev.jkrun.devices.fs.dax;

import dev.jkrun.devices.fs.FsException;
import dev.jkrun.libc.FileDescriptor;

/**
 * A virtio-fs DAX window (virtio 1.2 section 5.11.6, the "cache" shared memory region, id 0): guest-physical memory
 * the device maps host file ranges into (FUSE_SETUPMAPPING) so the guest reads and writes them without FUSE
 * requests, and unmaps again (FUSE_REMOVEMAPPING). Offsets and lengths come from the guest: implementations check
 * them (4 KiB aligned, inside the window) and fail EINVAL otherwise.
 */
public interface DaxWindow extends AutoCloseable {
    /** shmid of the virtio-fs cache window (include/uapi/linux/virtio_fs.h VIRTIO_FS_SHMCAP_ID_CACHE). */
    int CACHE_SHM_ID = 0;

    /** Where the window is in guest-physical memory. */
    long guestAddress();

    long size();

    /** log2 of the alignment of every offset and length (FUSE_INIT's map_alignment). */
    int alignmentShift();

    /**
     * Maps {@code length} bytes of {@code fd} from {@code fileOffset} at {@code windowOffset}; with {@code writable}
     * the guest's writes reach the file, otherwise they stay private to the window (the file never changes).
     */
    void mapFile(FileDescriptor fd, long fileOffset, long windowOffset, long length, boolean writable) throws FsException;

    /** Maps a copy of {@code content} from {@code contentOffset} (zeros past its end): a virtual file's bytes. */
    void mapBytes(byte[] content, long contentOffset, long windowOffset, long length) throws FsException;

    /** Puts zeroed memory back over the range; {@code length} all ones with offset 0 means the whole window. */
    void unmap(long windowOffset, long length) throws FsException;

    /** Drops every mapping (the driver went away: FUSE_DESTROY or a device reset). */
    void unmapAll();

    /** Unmaps the window's host memory; the VM must no longer run. */
    @Override
    void close();
}
