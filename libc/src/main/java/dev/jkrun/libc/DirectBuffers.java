package dev.jkrun.libc;

import java.nio.ByteBuffer;

/**
 * The native address of a direct buffer, for system calls that take many buffers at once (iovec arrays): read from
 * the buffer itself ({@link RawMemory}), since a JNI call per buffer (jffi's {@code getDirectBufferAddress}) cost
 * more than the copy it was to save for a 1 MiB read into 4 KiB guest pages.
 */
final class DirectBuffers {
    private DirectBuffers() {}

    /** The address of {@code b}'s element 0 (add its position for the next byte); {@code b} must be direct. */
    static long address(ByteBuffer b) {
        if (!b.isDirect()) {
            throw new IllegalArgumentException("not a direct buffer");
        }
        return RawMemory.ACCESS.address(b);
    }
}
