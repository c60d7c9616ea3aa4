package dev.jkrun.libc;

import static dev.jkrun.libc.FfmCalls.I;
import static dev.jkrun.libc.FfmCalls.J;
import static dev.jkrun.libc.FfmCalls.UNREAD;
import static dev.jkrun.libc.FfmCalls.call;
import static dev.jkrun.libc.FfmCalls.cstring;
import static dev.jkrun.libc.FfmCalls.enter;
import static dev.jkrun.libc.FfmCalls.plain;
import static dev.jkrun.libc.FfmCalls.plainAt;
import static dev.jkrun.libc.FfmCalls.rethrow;
import static dev.jkrun.libc.FfmCalls.string;

import dev.jkrun.libc.FfmCalls.PerThread;
import java.lang.invoke.MethodHandle;

/**
 * {@link LibCDl.Calls} as FFM downcalls (JDK 22+), and {@link #FUNCTIONS}: calls through function pointers, each
 * with a handle made for that call (they are rare: a library's version and its one kernel). Handles are bound on
 * first use, as in {@link FfmLibC}.
 */
final class FfmDl implements LibCDl.Calls {
    /**
     * dlopen and dlerror are bound together, before the first dlopen: binding looks the symbol up through the
     * dynamic loader, which clears a pending dlerror, so binding dlerror after a failed dlopen lost its message.
     */
    private static final class FnDlopen {
        static final MethodHandle H = plain("dlopen", J, J, I);
        static final MethodHandle ERROR = plain("dlerror", J);
    }

    private static final class FnDlsym {
        static final MethodHandle H = plain("dlsym", J, J, J);
    }

    private static final class FnDlclose {
        static final MethodHandle H = plain("dlclose", I, J);
    }

    static final LibCDl.Functions FUNCTIONS = new LibCDl.Functions() {
        @Override
        public int callInt(long fn) {
            try {
                return (int) call(plainAt(fn, I), UNREAD);
            } catch (Throwable e) {
                throw rethrow(e);
            }
        }

        @Override
        public long callAddress(long fn, long a, long b, long c) {
            try {
                return call(plainAt(fn, J, J, J, J), UNREAD, a, b, c);
            } catch (Throwable e) {
                throw rethrow(e);
            }
        }
    };

    @Override
    public long dlopen(String file, int mode) {
        PerThread t = enter();
        try {
            long fileAt = t.in(cstring(file));
            return (long) call(FnDlopen.H, UNREAD, fileAt, mode);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long dlsym(long handle, String name) {
        PerThread t = enter();
        try {
            long nameAt = t.in(cstring(name));
            return (long) call(FnDlsym.H, UNREAD, handle, nameAt);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int dlclose(long handle) {
        try {
            return (int) call(FnDlclose.H, UNREAD, handle);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public String dlerror() {
        try {
            return string((long) call(FnDlopen.ERROR, UNREAD));
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }
}
