package dev.jkrun.libc;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;

/** libc through JNR-FFI (JDK 17-21, or {@code -Djkrun.native=jnr}): each surface is bound when first used. */
final class JnrBinding implements Native.Binding {
    static final JnrBinding INSTANCE = new JnrBinding();

    private JnrBinding() {}

    private static final class Libc {
        static final LibC CALLS = LibraryLoader.create(LibC.class).failImmediately().load("c");
        static final Runtime RUNTIME = Runtime.getRuntime(CALLS);
    }

    private static final class Fs {
        static final LibCFs.Calls CALLS = LibraryLoader.create(LibCFs.Calls.class).failImmediately().load("c");
    }

    private static final class Net {
        static final LibCSocket.Calls CALLS = LibraryLoader.create(LibCSocket.Calls.class).failImmediately().load("c");
    }

    private static final class Ep {
        static final LibCEpoll.Calls CALLS = LibraryLoader.create(LibCEpoll.Calls.class).failImmediately().load("c");
    }

    private static final class Dl {
        static final LibCDl.Calls CALLS = LibraryLoader.create(LibCDl.Calls.class).failImmediately().load("c");
    }

    /** Through jffi's invoker, which calls any address with a described signature. */
    private static final class Functions implements LibCDl.Functions {
        static final Functions INSTANCE = new Functions();

        @Override
        public int callInt(long fn) {
            com.kenai.jffi.Function f = new com.kenai.jffi.Function(fn, com.kenai.jffi.Type.SINT32);
            return com.kenai.jffi.Invoker.getInstance().invokeI0(f.getCallContext(), f.getFunctionAddress());
        }

        @Override
        public long callAddress(long fn, long a, long b, long c) {
            com.kenai.jffi.Type p = com.kenai.jffi.Type.POINTER;
            com.kenai.jffi.Function f = new com.kenai.jffi.Function(fn, p, p, p, p);
            return com.kenai.jffi.Invoker.getInstance().invokeN3(f.getCallContext(), f.getFunctionAddress(), a, b, c);
        }
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
    public LibCDl.Functions functions() { return Functions.INSTANCE; }

    /** jffi keeps one saved errno per thread, whichever interface made the call. */
    @Override
    public int errno() { return Libc.RUNTIME.getLastError(); }

    @Override
    public String name() { return "jnr"; }
}
