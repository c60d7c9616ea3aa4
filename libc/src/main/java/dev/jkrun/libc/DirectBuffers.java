package dev.jkrun.libc;

import java.lang.reflect.Field;
import java.nio.Buffer;
import java.nio.ByteBuffer;

/**
 * The native address of a direct buffer, for system calls that take many buffers at once (iovec arrays). Read from
 * {@code java.nio.Buffer.address} with {@code sun.misc.Unsafe}, as Netty does: a JNI call per buffer (jffi's
 * {@code getDirectBufferAddress}) cost more than the copy it was to save for a 1 MiB read into 4 KiB guest pages.
 */
final class DirectBuffers {
    private static final sun.misc.Unsafe U;
    /** The field's offset, or -1 where it cannot be read (then jffi's JNI call). */
    private static final long ADDRESS;

    static {
        sun.misc.Unsafe u = null;
        long off = -1;
        try {
            Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            u = (sun.misc.Unsafe) f.get(null);
            off = u.objectFieldOffset(Buffer.class.getDeclaredField("address"));
        } catch (ReflectiveOperationException | RuntimeException e) {
            off = -1;
        }
        U = u;
        ADDRESS = off;
    }

    private DirectBuffers() {}

    /** The address of {@code b}'s element 0 (add its position for the next byte); {@code b} must be direct. */
    static long address(ByteBuffer b) {
        if (!b.isDirect()) {
            throw new IllegalArgumentException("not a direct buffer");
        }
        return ADDRESS >= 0 ? U.getLong(b, ADDRESS) : com.kenai.jffi.MemoryIO.getInstance().getDirectBufferAddress(b);
    }
}
