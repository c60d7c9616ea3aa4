package dev.jkrun.devices.virtio.net;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Where a NIC's frames go and come from on the host, as libkrun's net backends (unixstream, unixgram, tap behind one
 * trait): non-blocking, polled by the device's event loop on {@link #fd()}. A backend holds at most one frame of its
 * own (a stream's partly written one); everything else waits in the guest's queues, so neither side can make the
 * VMM buffer without bound. An {@link IOException} (or a native call's failure) means the backend is gone: the
 * device stops the NIC's traffic, not the VM.
 */
public interface NetBackend extends AutoCloseable {
    /**
     * The longest Ethernet frame either way, header excluded: a 64 KiB IP packet (TSO/UFO) plus the Ethernet header,
     * libkrun's 65562-byte buffer less the 12-byte virtio-net header.
     */
    int MAX_FRAME = 65550;
    /** {@link #read}: nothing is there now (wait for {@link #fd()} to be readable). */
    int NONE = 0;
    /** {@link #read}: a frame arrived that could not be taken (too long, empty, truncated) and was dropped. */
    int DROPPED = -1;

    /** What became of a frame given to {@link #write}. */
    enum WriteResult {
        /** Sent, or taken to finish later (then {@link #hasPendingWrite()} until it is out). */
        SENT,
        /** No room: nothing was written; offer it again when {@link #fd()} is writable. */
        FULL,
        /** The host is short of buffers (ENOBUFS), which poll does not announce: offer it again a little later. */
        BUSY,
        /** Refused for good (the peer cannot take a frame this long): dropped and counted by the device. */
        REJECTED
    }

    /** A short name for logs: "unixstream /run/passt.sock", "unixgram fd 7"... */
    String describe();

    /** Whether frames carry the 12-byte virtio-net header on this backend (tap); socket peers get bare frames. */
    boolean carriesHeader();

    /** The descriptor to poll: readable when a frame may be there, writable when there is room. */
    int fd();

    /** Reads one frame into {@code dst} from its position (it has room for the largest frame); its length, or NONE or DROPPED. */
    int read(ByteBuffer dst) throws IOException;

    /** Offers one frame (the remaining bytes of {@code frame}); never called while {@link #hasPendingWrite()}. */
    WriteResult write(ByteBuffer frame) throws IOException;

    /** The features the driver accepted (FEATURES_OK), for a backend whose host side must follow them (tap). */
    default void negotiated(long features) {}

    /** Whether a frame taken by {@link #write} is still partly unwritten. */
    default boolean hasPendingWrite() { return false; }

    /** Writes more of the pending frame; whether it is all out now. */
    default boolean flushPending() throws IOException { return true; }

    @Override
    void close();
}
