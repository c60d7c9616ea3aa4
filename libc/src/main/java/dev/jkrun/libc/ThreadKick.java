package dev.jkrun.libc;

/**
 * Interrupting a platform thread blocked in a native call (KVM_RUN) without running Java in a signal handler.
 *
 * <p>The kick is a real-time signal that every vCPU thread keeps blocked ({@link #blockOnCurrentThread()}).
 * KVM_SET_SIGNAL_MASK installs {@link #maskWithoutKick()} for the duration of KVM_RUN only, so a
 * {@link #kick(NativeThread)} (pthread_kill) either makes a running KVM_RUN return EINTR, or stays pending and
 * makes the next KVM_RUN return EINTR at once. The signal is never delivered to a handler: after KVM_RUN the
 * blocking mask is back, and {@link #drain()} consumes it with a zero-timeout sigtimedwait. HotSpot does not use
 * this signal, and since it is thread-directed and blocked, the JVM never sees it.
 */
public final class ThreadKick {
    private static final int SIG_BLOCK = 0, SIG_SETMASK = 2;
    private static final int SIGSET_BYTES = 128; // glibc sigset_t
    /** SIGRTMIN+6: glibc keeps the first two for itself; HotSpot uses none of the real-time signals. */
    public static final int SIGNAL = Native.libc().__libc_current_sigrtmin() + 6;

    private ThreadKick() {}

    /** The calling OS thread, so another thread can kick it. */
    public record NativeThread(long pthread, long tid) {}

    /**
     * The set holding only the kick signal, and a zero struct timespec: read by the kernel, never written, so every
     * thread shares them (and a kick drained costs no allocation).
     */
    private static final NativeBuffer KICK_SET = NativeBuffer.allocate(SIGSET_BYTES);
    private static final NativeBuffer ZERO_TIMEOUT = NativeBuffer.allocate(16);

    static {
        setBit(KICK_SET, SIGNAL);
    }

    public static NativeThread current() {
        return new NativeThread(Native.libc().pthread_self(), Native.libc().gettid());
    }

    /** Blocks the kick signal on the calling thread (call first thing in every vCPU thread). */
    public static void blockOnCurrentThread() {
        int rc = Native.libc().pthread_sigmask(SIG_BLOCK, KICK_SET.address(), 0);
        if (rc != 0) {
            throw new NativeCallException("pthread_sigmask", rc);
        }
    }

    /** The calling thread's current signal mask with the kick signal removed: the 8-byte kernel sigset for KVM_RUN. */
    public static byte[] maskWithoutKick() {
        NativeBuffer old = Ioctl.allocate(SIGSET_BYTES);
        int rc = Native.libc().pthread_sigmask(SIG_BLOCK, 0, old.address());
        if (rc != 0) {
            throw new NativeCallException("pthread_sigmask", rc);
        }
        byte[] kernel = new byte[8];
        old.get(0, kernel, 0, 8);
        int bit = SIGNAL - 1;
        kernel[bit / 8] &= (byte) ~(1 << (bit % 8));
        return kernel;
    }

    /** Sends the kick to {@code thread}; harmless if the thread already left its native call. */
    public static void kick(NativeThread thread) {
        int rc = Native.libc().pthread_kill(thread.pthread(), SIGNAL);
        if (rc != 0) {
            throw new NativeCallException("pthread_kill", rc);
        }
    }

    /** Consumes a pending kick on the calling thread, if any; returns whether one was pending. */
    public static boolean drain() {
        boolean any = false;
        while (Native.libc().sigtimedwait(KICK_SET.address(), 0, ZERO_TIMEOUT.address()) == SIGNAL) {
            any = true;
        }
        return any;
    }

    private static void setBit(NativeBuffer set, int sig) {
        int bit = sig - 1;
        set.putByte(bit / 8, (byte) (set.getByte(bit / 8) | (1 << (bit % 8))));
    }
}
