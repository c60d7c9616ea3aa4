package dev.jkrun.libc;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;

/**
 * What the FFM binding's classes share (JDK 22+): downcall handles to libc symbols, the per-thread segment the linker
 * saves errno into, and a per-thread scratch area where Java arrays are copied for the call (a downcall that may
 * block cannot be handed heap memory). Every pointer argument is passed as a {@code long} address, as the JNR
 * interfaces declare them; C's {@code int} and {@code long} map to Java's.
 *
 * <p>Every handle has one type, {@code (MemorySegment errnoState, long a1, ..., long a6) long}, called through
 * {@link #call}: the JDK spins code for each new call shape it links (~4 ms each at start-up, ~30 ms for the first),
 * and a VM's start calls a dozen functions of ten shapes. On Linux x86_64 every function is linked with that one C
 * shape: six integer arguments, from the first one variadic, errno saved. The System V AMD64 calling convention passes
 * an integer argument in the same register whether it is fixed or variadic (ABI 3.2.3 and 3.5.7: a variadic call
 * adds only {@code %al}, the number of vector registers used, which a fixed-argument function ignores), a callee
 * reads an {@code int} from the low half of its register and ignores registers past its own arguments, and an
 * {@code int} result is the low half of the one returned, which the callers' casts keep. So one spun stub serves
 * every libc function here. Elsewhere, or with {@code -Djkrun.ffm.shapes=exact}, each function is linked with its
 * own C signature and adapted to the one type: macOS on arm64 passes variadic arguments on the stack, and Linux on
 * aarch64 (whose AAPCS64 would allow the one shape) has no JDK 22+ to test it on here.
 */
final class FfmCalls {
    static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    static final ValueLayout.OfLong J = ValueLayout.JAVA_LONG;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    /** The least room any array argument gets: more than the largest struct these calls fill (statfs, stat). */
    private static final long MIN_ROOM = 256;
    /** Scratch kept per thread up to this size; a larger array gets memory of its own for that call. */
    private static final long SCRATCH_KEPT = 4L << 20;

    /** The arguments every handle takes after the errno segment. */
    private static final int WORDS = 6;
    private static final MethodType WORD_TYPE = MethodType.methodType(long.class, MemorySegment.class,
            long.class, long.class, long.class, long.class, long.class, long.class);
    /** Whether every function is linked with the one C shape (class comment). */
    static final boolean ONE_SHAPE = oneShape(System.getProperty("jkrun.ffm.shapes", "auto"),
            System.getProperty("os.name", ""), System.getProperty("os.arch", ""));
    private static final FunctionDescriptor WORD_CALL = FunctionDescriptor.of(J, J, J, J, J, J, J);
    private static final Linker.Option[] WORD_OPTIONS = {Linker.Option.firstVariadicArg(0), Linker.Option.captureCallState("errno")};
    /** Where the errno of a call that reports failure otherwise goes, unread: any thread may write it. */
    static final MemorySegment UNREAD = Arena.global().allocate(STATE);

    private static final ThreadLocal<PerThread> THREAD = ThreadLocal.withInitial(PerThread::new);

    private FfmCalls() {}

    static boolean oneShape(String choice, String os, String arch) {
        switch (choice) {
            case "exact":
                return false;
            case "auto":
                return os.equals("Linux") && (arch.equals("amd64") || arch.equals("x86_64"));
            default:
                throw new IllegalArgumentException("-Djkrun.ffm.shapes=" + choice + ": expected auto or exact");
        }
    }

    /** A handle that saves errno into its first argument ({@link PerThread#state}). */
    static MethodHandle saving(String name, ValueLayout ret, ValueLayout... args) {
        return bind(name, ret, args, -1, true);
    }

    /** As {@link #saving}, for a variadic function whose variable arguments start at {@code firstVariadic}. */
    static MethodHandle savingVariadic(String name, int firstVariadic, ValueLayout ret, ValueLayout... args) {
        return bind(name, ret, args, firstVariadic, true);
    }

    /** A handle for a call that cannot fail, or reports failure in its result: called with {@link #UNREAD}. */
    static MethodHandle plain(String name, ValueLayout ret, ValueLayout... args) {
        return bind(name, ret, args, -1, false);
    }

    /** As {@link #plain}, for the function at {@code address} (a pointer from dlsym). */
    static MethodHandle plainAt(long address, ValueLayout ret, ValueLayout... args) {
        return bind(MemorySegment.ofAddress(address), "the function at 0x" + Long.toHexString(address), ret, args, -1, false);
    }

    private static MethodHandle bind(String name, ValueLayout ret, ValueLayout[] args, int firstVariadic, boolean errno) {
        MemorySegment symbol = LINKER.defaultLookup().find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError(name + " not found in the C library"));
        return bind(symbol, name, ret, args, firstVariadic, errno);
    }

    private static MethodHandle bind(MemorySegment symbol, String name, ValueLayout ret, ValueLayout[] args, int firstVariadic,
                                     boolean errno) {
        if (args.length > WORDS) {
            throw new IllegalArgumentException(name + ": " + args.length + " arguments, at most " + WORDS);
        }
        if (ONE_SHAPE) {
            return LINKER.downcallHandle(symbol, WORD_CALL, WORD_OPTIONS);
        }
        FunctionDescriptor fd = ret == null ? FunctionDescriptor.ofVoid(args) : FunctionDescriptor.of(ret, args);
        Linker.Option[] options;
        if (firstVariadic >= 0) {
            options = errno ? new Linker.Option[] {Linker.Option.firstVariadicArg(firstVariadic), Linker.Option.captureCallState("errno")}
                    : new Linker.Option[] {Linker.Option.firstVariadicArg(firstVariadic)};
        } else {
            options = errno ? new Linker.Option[] {Linker.Option.captureCallState("errno")} : new Linker.Option[0];
        }
        MethodHandle exact = LINKER.downcallHandle(symbol, fd, options);
        if (!errno) {
            exact = MethodHandles.dropArguments(exact, 0, MemorySegment.class);
        }
        Class<?>[] unused = new Class<?>[WORDS - args.length];
        java.util.Arrays.fill(unused, long.class);
        exact = MethodHandles.dropArguments(exact, 1 + args.length, unused);
        // long to int narrows, int to long widens, a void result becomes 0
        return MethodHandles.explicitCastArguments(exact, WORD_TYPE);
    }

    /** Calls {@code h} (a handle from this class) with the arguments given, the rest 0. */
    static long call(MethodHandle h, MemorySegment state) throws Throwable {
        return (long) h.invokeExact(state, 0L, 0L, 0L, 0L, 0L, 0L);
    }

    static long call(MethodHandle h, MemorySegment state, long a1) throws Throwable {
        return (long) h.invokeExact(state, a1, 0L, 0L, 0L, 0L, 0L);
    }

    static long call(MethodHandle h, MemorySegment state, long a1, long a2) throws Throwable {
        return (long) h.invokeExact(state, a1, a2, 0L, 0L, 0L, 0L);
    }

    static long call(MethodHandle h, MemorySegment state, long a1, long a2, long a3) throws Throwable {
        return (long) h.invokeExact(state, a1, a2, a3, 0L, 0L, 0L);
    }

    static long call(MethodHandle h, MemorySegment state, long a1, long a2, long a3, long a4) throws Throwable {
        return (long) h.invokeExact(state, a1, a2, a3, a4, 0L, 0L);
    }

    static long call(MethodHandle h, MemorySegment state, long a1, long a2, long a3, long a4, long a5) throws Throwable {
        return (long) h.invokeExact(state, a1, a2, a3, a4, a5, 0L);
    }

    static long call(MethodHandle h, MemorySegment state, long a1, long a2, long a3, long a4, long a5, long a6)
            throws Throwable {
        return (long) h.invokeExact(state, a1, a2, a3, a4, a5, a6);
    }

    /** The calling thread's state, its scratch emptied for a new call (calls on one thread never nest). */
    static PerThread enter() {
        PerThread t = THREAD.get();
        t.used = 0;
        if (!t.retired.isEmpty()) {
            t.retired.clear();
        }
        return t;
    }

    /** errno as the last saving call on this thread left it. */
    static int errno() { return (int) ERRNO.get(THREAD.get().state, 0L); }

    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        throw new IllegalStateException("libc downcall failed", t); // downcalls throw nothing checked
    }

    /**
     * A count for a call that writes or reads up to that many bytes (or elements) of an array or buffer holding
     * {@code cap}: never more than it holds, and a negative count (a huge size_t to C) is refused.
     */
    static long count(long n, long cap) {
        if (n < 0) {
            throw new IllegalArgumentException("negative count " + n);
        }
        return Math.min(n, cap);
    }

    /** preadv/pwritev's iovcnt: only as many 16-byte iovecs as {@code iov} holds from its position. */
    static int iovecs(int iovcnt, ByteBuffer iov) {
        if (iovcnt < 0 || iovcnt > iov.remaining() / 16) {
            throw new IllegalArgumentException(iovcnt + " iovecs in a buffer of " + iov.remaining() + " bytes");
        }
        return iovcnt;
    }

    /** A socklen_t in/out: cut to the address buffer's size before the kernel writes that much into its room. */
    static void socklen(int[] len, byte[] buf) {
        if (len == null || len.length < 1 || len[0] < 0) {
            throw new IllegalArgumentException("socket address length missing or negative");
        }
        len[0] = Math.min(len[0], buf == null ? 0 : buf.length);
    }

    /** {@code s} as the NUL-terminated UTF-8 bytes C takes (null for null). */
    static byte[] cstring(String s) {
        if (s == null) {
            return null;
        }
        byte[] b = s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        return java.util.Arrays.copyOf(b, b.length + 1);
    }

    /** Reads the NUL-terminated string at {@code address} (null for NULL). */
    static String string(long address) {
        return address == 0 ? null : MemorySegment.ofAddress(address).reinterpret(Long.MAX_VALUE).getString(0);
    }

    /** One thread's errno segment and scratch area. */
    static final class PerThread {
        final MemorySegment state = Arena.ofAuto().allocate(STATE);
        private MemorySegment scratch = Arena.ofAuto().allocate(4096, 16);
        private long used;

        /** Memory this call's arguments still live in: scratch replaced during the call, one-off large areas. */
        private final java.util.ArrayList<MemorySegment> retired = new java.util.ArrayList<>();

        /**
         * At least {@code n} bytes of scratch for this call, 16-byte aligned, not zeroed; never fewer than
         * {@link #MIN_ROOM}, so a call that fills a fixed-size struct (struct stat, two socket fds) through a
         * shorter array still writes inside scratch, and a zero-length array does not share its address.
         */
        long reserve(long n) {
            long need = (Math.max(n, MIN_ROOM) + 15) & ~15L;
            if (need > scratch.byteSize() - used) {
                long want = Math.max(used + need, scratch.byteSize() * 2);
                if (want > SCRATCH_KEPT) {
                    // for this call only (one large array, rarely): held until the next call, then the collector's
                    MemorySegment once = Arena.ofAuto().allocate(Math.max(need, 16), 16);
                    retired.add(once);
                    return once.address();
                }
                retired.add(scratch); // earlier arguments of this call are there
                scratch = Arena.ofAuto().allocate(want, 16);
                used = 0;
            }
            long a = scratch.address() + used;
            used += need;
            return a;
        }

        /** Copies {@code a} (whole) into scratch; 0 for null. */
        long in(byte[] a) {
            if (a == null) {
                return 0;
            }
            long at = reserve(a.length);
            MemorySegment.copy(a, 0, MemorySegment.ofAddress(at).reinterpret(a.length), ValueLayout.JAVA_BYTE, 0, a.length);
            return at;
        }

        long in(int[] a) {
            if (a == null) {
                return 0;
            }
            long at = reserve(4L * a.length);
            MemorySegment.copy(a, 0, MemorySegment.ofAddress(at).reinterpret(4L * a.length), ValueLayout.JAVA_INT, 0, a.length);
            return at;
        }

        long in(long[] a) {
            if (a == null) {
                return 0;
            }
            long at = reserve(8L * a.length);
            MemorySegment.copy(a, 0, MemorySegment.ofAddress(at).reinterpret(8L * a.length), ValueLayout.JAVA_LONG, 0, a.length);
            return at;
        }

        /** Room for {@code a}'s bytes, not copied in (the call only writes them); 0 for null. */
        long out(byte[] a) { return a == null ? 0 : reserve(a.length); }

        long out(int[] a) { return a == null ? 0 : reserve(4L * a.length); }

        /** Copies {@code n} bytes (at most the array) back from {@code at} into {@code a}. */
        static void back(long at, byte[] a, long n) {
            if (a == null || at == 0 || n <= 0) {
                return;
            }
            int len = (int) Math.min(n, a.length);
            MemorySegment.copy(MemorySegment.ofAddress(at).reinterpret(len), ValueLayout.JAVA_BYTE, 0, a, 0, len);
        }

        static void back(long at, int[] a) {
            if (a == null || at == 0) {
                return;
            }
            MemorySegment.copy(MemorySegment.ofAddress(at).reinterpret(4L * a.length), ValueLayout.JAVA_INT, 0, a, 0, a.length);
        }

        static void back(long at, long[] a) {
            if (a == null || at == 0) {
                return;
            }
            MemorySegment.copy(MemorySegment.ofAddress(at).reinterpret(8L * a.length), ValueLayout.JAVA_LONG, 0, a, 0, a.length);
        }

        /**
         * The address of {@code b}'s remaining bytes, as JNR passes a buffer: a direct buffer's own memory, a heap
         * buffer's bytes copied into scratch when {@code copyIn} (room only, otherwise).
         */
        long buffer(ByteBuffer b, boolean copyIn) {
            if (b == null) {
                return 0;
            }
            if (b.isDirect()) {
                return MemorySegment.ofBuffer(b).address();
            }
            int n = b.remaining();
            long at = reserve(n);
            if (copyIn) {
                MemorySegment.copy(MemorySegment.ofBuffer(b), 0, MemorySegment.ofAddress(at).reinterpret(n), 0, n);
            }
            return at;
        }

        /** After a call that wrote {@code n} bytes at {@code at}: copies them into a heap buffer's remaining bytes. */
        static void back(long at, ByteBuffer b, long n) {
            if (b == null || b.isDirect() || n <= 0) {
                return;
            }
            long len = Math.min(n, b.remaining());
            MemorySegment.copy(MemorySegment.ofAddress(at).reinterpret(len), 0, MemorySegment.ofBuffer(b), 0, len);
        }
    }
}
