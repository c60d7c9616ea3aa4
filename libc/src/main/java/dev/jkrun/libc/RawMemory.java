package dev.jkrun.libc;

import java.lang.reflect.Field;
import java.nio.Buffer;
import java.nio.ByteBuffer;

/**
 * Loads and stores at native addresses, for {@link NativeBuffer} (which checks every address against its bounds
 * first), and direct buffers' addresses. Through the FFM API where libc is called through it (JDK 22+: Unsafe's
 * memory access warns there from JDK 24 on, and is to be removed), through {@code sun.misc.Unsafe} otherwise.
 */
final class RawMemory {
    /** The accessor: one implementation per JVM, so calls through it inline. */
    interface Access {
        byte getByte(long a);

        void putByte(long a, byte v);

        short getShort(long a);

        void putShort(long a, short v);

        int getInt(long a);

        void putInt(long a, int v);

        long getLong(long a);

        void putLong(long a, long v);

        void copyToArray(long a, byte[] dst, int at, int len);

        void copyFromArray(byte[] src, int at, long a, int len);

        void fill(long a, long len, byte v);

        /** The address of direct buffer {@code b}'s element 0. */
        long address(ByteBuffer b);
    }

    static final Access ACCESS = choose();

    private RawMemory() {}

    private static Access choose() {
        if (Native.binding().name().equals("ffm")) {
            try {
                return (Access) Class.forName("dev.jkrun.libc.FfmAccess").getDeclaredConstructor().newInstance();
            } catch (ReflectiveOperationException | LinkageError e) {
                // the binding is FFM, so this class is there too; fall through only if the jar was assembled oddly
            }
        }
        return new UnsafeAccess();
    }

    /** JDK 17-21 (or {@code -Djkrun.native=jnr}): Unsafe with absolute addresses. */
    static final class UnsafeAccess implements Access {
        private static final sun.misc.Unsafe U;
        /** {@code java.nio.Buffer.address}'s offset, as Netty reads it (jffi's JNI call costs more per buffer). */
        private static final long BUFFER_ADDRESS;

        static {
            try {
                Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
                f.setAccessible(true);
                U = (sun.misc.Unsafe) f.get(null);
                BUFFER_ADDRESS = U.objectFieldOffset(Buffer.class.getDeclaredField("address"));
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        @Override
        public byte getByte(long a) { return U.getByte(a); }

        @Override
        public void putByte(long a, byte v) { U.putByte(a, v); }

        @Override
        public short getShort(long a) { return U.getShort(a); }

        @Override
        public void putShort(long a, short v) { U.putShort(a, v); }

        @Override
        public int getInt(long a) { return U.getInt(a); }

        @Override
        public void putInt(long a, int v) { U.putInt(a, v); }

        @Override
        public long getLong(long a) { return U.getLong(a); }

        @Override
        public void putLong(long a, long v) { U.putLong(a, v); }

        @Override
        public void copyToArray(long a, byte[] dst, int at, int len) {
            U.copyMemory(null, a, dst, sun.misc.Unsafe.ARRAY_BYTE_BASE_OFFSET + at, len);
        }

        @Override
        public void copyFromArray(byte[] src, int at, long a, int len) {
            U.copyMemory(src, sun.misc.Unsafe.ARRAY_BYTE_BASE_OFFSET + at, null, a, len);
        }

        @Override
        public void fill(long a, long len, byte v) { U.setMemory(a, len, v); }

        @Override
        public long address(ByteBuffer b) { return U.getLong(b, BUFFER_ADDRESS); }
    }
}
