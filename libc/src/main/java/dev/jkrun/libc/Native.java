package dev.jkrun.libc;

/**
 * The one place that picks how libc is called: FFM downcalls on JDK 22+ (the multi-release jar's
 * {@code FfmBinding}), JNR-FFI before that. {@code -Djkrun.native=jnr} keeps JNR on a newer JDK;
 * {@code -Djkrun.native=ffm} insists on FFM and fails where it is missing. The wrappers in this package reach libc
 * only through here, and read errno from the same binding right after the failed call, on the same thread.
 */
final class Native {
    /** One way of calling libc: the raw surfaces, each bound on first use, and the calling thread's last errno. */
    interface Binding {
        LibC libc();

        LibCFs.Calls fs();

        LibCSocket.Calls sockets();

        LibCEpoll.Calls epoll();

        LibCDl.Calls dl();

        LibCDl.Functions functions();

        int errno();

        /** {@code jnr} or {@code ffm}. */
        String name();
    }

    private static final Binding BINDING = choose(System.getProperty("jkrun.native", "auto"));

    private Native() {}

    static Binding choose(String want) {
        switch (want) {
            case "jnr":
                return JnrBinding.INSTANCE;
            case "auto":
            case "ffm":
                if (java.lang.Runtime.version().feature() >= 22) {
                    try {
                        Binding ffm = (Binding) Class.forName("dev.jkrun.libc.FfmBinding").getDeclaredConstructor().newInstance();
                        ffm.libc().getpid(); // binds one downcall: fails here where native access is denied
                        return ffm;
                    } catch (ReflectiveOperationException | LinkageError | RuntimeException e) {
                        if (want.equals("ffm")) {
                            throw new IllegalStateException("-Djkrun.native=ffm: the FFM binding is not usable: " + e, e);
                        }
                    }
                } else if (want.equals("ffm")) {
                    throw new IllegalStateException("-Djkrun.native=ffm needs JDK 22 or newer, not " + java.lang.Runtime.version());
                }
                return JnrBinding.INSTANCE;
            default:
                throw new IllegalArgumentException("-Djkrun.native=" + want + ": expected jnr, ffm or auto");
        }
    }

    static Binding binding() { return BINDING; }

    static LibC libc() { return BINDING.libc(); }

    static LibCFs.Calls fs() { return BINDING.fs(); }

    static LibCSocket.Calls sockets() { return BINDING.sockets(); }

    static LibCEpoll.Calls epoll() { return BINDING.epoll(); }

    static int errno() { return BINDING.errno(); }

    /** Returns {@code rc} or throws naming {@code call} when it signals failure with -1. */
    static long check(String call, long rc) {
        if (rc == -1) {
            throw new NativeCallException(call, errno());
        }
        return rc;
    }
}
