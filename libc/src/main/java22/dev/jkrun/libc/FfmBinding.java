package dev.jkrun.libc;

/**
 * libc through FFM downcalls (JDK 22+, the default there): no JNR or jffi is loaded, and the downcall handles are
 * built by the JDK's linker, whose classes a CDS or AOT archive holds. Each surface is bound when first used.
 */
final class FfmBinding implements Native.Binding {
    private static final class Libc {
        static final LibC CALLS = new FfmLibC();
    }

    private static final class Fs {
        static final LibCFs.Calls CALLS = new FfmFs();
    }

    private static final class Net {
        static final LibCSocket.Calls CALLS = new FfmSockets();
    }

    private static final class Ep {
        static final LibCEpoll.Calls CALLS = new FfmEpoll();
    }

    private static final class Dl {
        static final LibCDl.Calls CALLS = new FfmDl();
    }

    @Override
    public LibC libc() { return Libc.CALLS; }

    @Override
    public LibCFs.Calls fs() { return Fs.CALLS; }

    @Override
    public LibCSocket.Calls sockets() { return Net.CALLS; }

    @Override
    public LibCEpoll.Calls epoll() { return Ep.CALLS; }

    @Override
    public LibCDl.Calls dl() { return Dl.CALLS; }

    @Override
    public LibCDl.Functions functions() { return FfmDl.FUNCTIONS; }

    @Override
    public int errno() { return FfmCalls.errno(); }

    @Override
    public String name() { return "ffm"; }
}
