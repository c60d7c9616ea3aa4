package dev.jkrun.libc;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The two ways of calling libc answer alike: every check runs through each binding this JDK offers (JNR always;
 * FFM on JDK 22+ where the multi-release part is present), through {@link Native.Binding} directly, so one JVM
 * compares both. The typed wrappers' own tests then run on whichever binding is the default.
 */
class NativeBindingTest {
    private static final int O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0x40, O_CLOEXEC = 0x80000, ENOENT = 2, EBADF = 9, ENOTSOCK = 88;

    static List<Native.Binding> bindings() {
        List<Native.Binding> all = new ArrayList<>();
        all.add(Native.choose("jnr"));
        Native.Binding auto = Native.choose("auto");
        if (!auto.name().equals("jnr")) {
            all.add(auto);
        }
        return all;
    }

    static boolean ffmPresent() {
        try {
            Class.forName("dev.jkrun.libc.FfmBinding");
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    @Test
    void ffmIsTheDefaultWhereTheJdkHasIt() {
        boolean ffm = Runtime.version().feature() >= 22 && ffmPresent();
        assertEquals(ffm ? "ffm" : "jnr", Native.binding().name());
        assertEquals(ffm ? 2 : 1, bindings().size());
        assertEquals("jnr", Native.choose("jnr").name());
        assertThrows(IllegalArgumentException.class, () -> Native.choose("jni"));
        if (Runtime.version().feature() < 22) {
            assertThrows(IllegalStateException.class, () -> Native.choose("ffm"));
        }
    }

    /**
     * On Linux x86_64 every FFM downcall is linked with one C shape (FfmCalls), unless
     * {@code -Djkrun.ffm.shapes=exact} (libc's "exact-shapes" test run) links each with its own signature; both
     * answer every check of this class alike.
     */
    @Test
    void ffmLinksOneShapeOnLinuxUnlessToldNot() throws Exception {
        if (Runtime.version().feature() < 22 || !ffmPresent()) {
            return;
        }
        Class<?> calls = Class.forName("dev.jkrun.libc.FfmCalls");
        java.lang.reflect.Field oneShape = calls.getDeclaredField("ONE_SHAPE");
        oneShape.setAccessible(true);
        String arch = System.getProperty("os.arch");
        boolean fits = System.getProperty("os.name").equals("Linux") && arch.equals("amd64");
        boolean exact = "exact".equals(System.getProperty("jkrun.ffm.shapes"));
        assertEquals(fits && !exact, oneShape.getBoolean(null));
        java.lang.reflect.Method choose = calls.getDeclaredMethod("oneShape", String.class, String.class, String.class);
        choose.setAccessible(true);
        assertEquals(true, choose.invoke(null, "auto", "Linux", "amd64"));
        assertEquals(false, choose.invoke(null, "auto", "Linux", "aarch64"));
        assertEquals(false, choose.invoke(null, "auto", "Mac OS X", "aarch64"));
        assertEquals(false, choose.invoke(null, "exact", "Linux", "amd64"));
        java.lang.reflect.InvocationTargetException bad = assertThrows(java.lang.reflect.InvocationTargetException.class,
                () -> choose.invoke(null, "one", "Linux", "amd64"));
        assertTrue(bad.getCause().getMessage().contains("jkrun.ffm.shapes"), bad.getCause().getMessage());
    }

    /** mmap's six arguments, mremap's variadic fifth, cfmakeraw's void result, through each binding. */
    @Test
    void mapsRemapsAndMakesATermiosRaw() {
        final int PROT_RW = 3, MAP_PRIVATE_ANON = 0x22, MREMAP_MAYMOVE = 1, EINVAL = 22, CS8 = 0x30;
        for (Native.Binding b : bindings()) {
            LibC c = b.libc();
            long a = c.mmap(0, 4096, PROT_RW, MAP_PRIVATE_ANON, -1, 0, 0);
            assertNotEquals(-1L, a, b.name());
            assertEquals(0, a & 4095, b.name());
            c.cfmakeraw(a); // a zeroed struct termios: raw mode sets CS8 in c_cflag (offset 8)
            assertEquals(CS8, RawMemory.ACCESS.getInt(a + 8) & CS8, b.name());
            long r = c.mremap(a, 4096, 1 << 20, MREMAP_MAYMOVE, 0);
            assertNotEquals(-1L, r, b.name());
            assertEquals(CS8, RawMemory.ACCESS.getInt(r + 8) & CS8, b.name() + ": the contents moved with the mapping");
            assertEquals(-1L, c.mremap(r, 1 << 20, 8192, 0x7f0, 0), b.name() + ": unknown flags");
            assertEquals(EINVAL, b.errno(), b.name());
            assertEquals(0, c.munmap(r, 1 << 20), b.name());
        }
    }

    @Test
    void errnoIsTheFailedCallsOwn() {
        for (Native.Binding b : bindings()) {
            assertEquals(-1, b.libc().open("/nonexistent/jkrun", O_RDONLY, 0), b.name());
            assertEquals(ENOENT, b.errno(), b.name());
            assertEquals(-1, b.libc().close(-1), b.name());
            assertEquals(EBADF, b.errno(), b.name());
            assertEquals(-1, b.fs().openat(-100 /* AT_FDCWD */, "/nonexistent/x\0".getBytes(StandardCharsets.US_ASCII), O_RDONLY, 0), b.name());
            assertEquals(ENOENT, b.errno(), b.name());
            assertEquals("No such file or directory", b.libc().strerror(ENOENT), b.name());
        }
    }

    @Test
    void arraysGoInAndComeBack(@TempDir Path dir) throws Exception {
        for (Native.Binding b : bindings()) {
            Path f = dir.resolve("data-" + b.name());
            int fd = b.libc().open(f.toString(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            assertTrue(fd >= 0, b.name());
            try {
                byte[] data = "hello, libc".getBytes(StandardCharsets.US_ASCII);
                assertEquals(data.length, b.fs().pwrite(fd, data, data.length, 0), b.name());
                byte[] back = new byte[64];
                assertEquals(data.length, b.fs().pread(fd, back, back.length, 0), b.name());
                assertEquals("hello, libc", new String(back, 0, data.length, StandardCharsets.US_ASCII), b.name());
                if (b.name().equals("ffm")) {
                    // a count larger than the array is cut to it (JNR would let the kernel write past its copy)
                    byte[] small = new byte[4];
                    assertEquals(4, b.fs().pread(fd, small, 1000, 0), b.name());
                    assertEquals("hell", new String(small, StandardCharsets.US_ASCII), b.name());
                }
                // heap and direct buffers, from their positions
                ByteBuffer heap = ByteBuffer.allocate(16).position(3);
                assertEquals(13, b.fs().pread(fd, heap, heap.remaining(), 0) + 2, b.name());
                assertEquals('h', heap.get(3), b.name());
                assertEquals(0, heap.get(2), b.name());
                ByteBuffer direct = ByteBuffer.allocateDirect(16).position(5);
                assertEquals(11, b.fs().pread(fd, direct, direct.remaining(), 0), b.name());
                assertEquals('h', direct.get(5), b.name());
                assertEquals('c', direct.get(15), b.name());
                // a struct out: fstatat fills st_size (offset 48 in x86_64's and aarch64's struct stat)
                byte[] st = new byte[256];
                assertEquals(0, b.fs().fstatat(fd, new byte[] {0}, st, 0x1000 /* AT_EMPTY_PATH */), b.name());
                assertEquals(data.length, ByteBuffer.wrap(st).order(java.nio.ByteOrder.nativeOrder()).getLong(48), b.name());
                // long[] in and out: copy_file_range moves both offsets
                long[] in = {0}, out = {100};
                assertEquals(5, b.fs().copy_file_range(fd, in, fd, out, 5, 0), b.name());
                assertEquals(5, in[0], b.name());
                assertEquals(105, out[0], b.name());
                // int[] out
                int[] r = new int[1], e = new int[1], s = new int[1];
                assertEquals(0, b.libc().getresuid(r, e, s), b.name());
                // a NULL array where C allows one: getgroups(0, NULL) counts the groups
                int groups = b.libc().getgroups(0, null);
                assertTrue(groups >= 0, b.name());
                assertEquals(groups, b.fs().getgroups(0, null), b.name());
                assertEquals(Integer.parseInt(new com.sun.security.auth.module.UnixSystem().getUid() + ""), r[0], b.name());
            } finally {
                b.libc().close(fd);
            }
            assertEquals("hello, libc", Files.readString(f).substring(0, 11), b.name());
        }
    }

    @Test
    void countsBeyondTheirArraysAreRefused(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("f");
        Files.write(f, new byte[64]);
        for (Native.Binding b : bindings()) {
            if (!b.name().equals("ffm")) {
                continue; // JNR passes counts as given: the typed wrappers below check them for both bindings
            }
            int fd = b.libc().open(f.toString(), O_RDONLY | O_CLOEXEC, 0);
            try {
                // a negative count is a huge size_t to the kernel: refused before the call
                assertThrows(IllegalArgumentException.class, () -> b.fs().pread(fd, new byte[8], -1, 0));
                assertThrows(IllegalArgumentException.class, () -> b.fs().getdents64(fd, new byte[8], -8));
                assertThrows(IllegalArgumentException.class, () -> b.libc().read(fd, new byte[8], Long.MIN_VALUE));
                // more iovecs than the iovec buffer holds
                ByteBuffer iov = ByteBuffer.allocateDirect(32);
                assertThrows(IllegalArgumentException.class, () -> b.fs().preadv(fd, iov, 3, 0));
                assertThrows(IllegalArgumentException.class, () -> b.fs().pwritev(fd, iov, -1, 0));
                // a socket address length larger than its buffer is cut to it; a negative one refused
                int[] len = {4096};
                b.sockets().getsockname(fd, new byte[16], len); // ENOTSOCK, after the cut
                assertEquals(ENOTSOCK, b.errno());
                assertThrows(IllegalArgumentException.class, () -> b.sockets().getsockname(fd, new byte[16], new int[] {-1}));
                // a zero-length array still gets room of its own (fstatat's struct stat lands in it, not past it)
                assertEquals(0, b.fs().fstatat(fd, new byte[] {0}, new byte[0], 0x1000 /* AT_EMPTY_PATH */));
            } finally {
                b.libc().close(fd);
            }
        }
        // the typed wrappers check sizes for both bindings
        byte[] p = (f + "\0").getBytes(StandardCharsets.UTF_8), n = "user.x\0".getBytes(StandardCharsets.US_ASCII);
        assertThrows(IllegalArgumentException.class, () -> PosixFs.getxattr(p, n, new byte[4], -1));
        assertThrows(IllegalArgumentException.class, () -> PosixFs.getxattr(p, n, new byte[4], 5));
        assertThrows(IllegalArgumentException.class, () -> PosixFs.listxattr(p, new byte[4], 8));
        assertThrows(IndexOutOfBoundsException.class, () -> Poll.read(0, new byte[4], 2, 4));
        assertThrows(IndexOutOfBoundsException.class, () -> Poll.write(1, new byte[4], -1, 2));
    }

    @Test
    void largeArraysTakeMemoryOfTheirOwn(@TempDir Path dir) throws Exception {
        byte[] big = new byte[6 << 20];
        for (int i = 0; i < big.length; i++) {
            big[i] = (byte) (i * 31);
        }
        Path f = dir.resolve("big");
        Files.write(f, big);
        for (Native.Binding b : bindings()) {
            int fd = b.libc().open(f.toString(), O_RDONLY | O_CLOEXEC, 0);
            try {
                byte[] back = new byte[big.length];
                assertEquals(big.length, b.fs().pread(fd, back, back.length, 0), b.name());
                assertArrayEquals(big, back, b.name());
                // and a small call after it still works from the thread's scratch
                byte[] head = new byte[3];
                assertEquals(3, b.fs().pread(fd, head, 3, 0), b.name());
                assertArrayEquals(new byte[] {big[0], big[1], big[2]}, head, b.name());
            } finally {
                b.libc().close(fd);
            }
        }
    }

    @Test
    void sharedLibrariesOpenAndCall() throws Exception {
        // the C library this process runs on, by the path it was mapped from
        Path path = Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(l -> l.matches(".*/libc[.-].*so.*"))
                .map(l -> Path.of(l.substring(l.indexOf('/')))).findFirst().orElseThrow();
        try (SharedLibrary libc = SharedLibrary.open(path)) {
            long getpid = libc.symbol("getpid");
            assertNotEquals(0, getpid);
            assertEquals(ProcessHandle.current().pid(), libc.callInt(getpid));
            assertEquals(0, libc.symbol("jkrun_no_such_symbol"));
        }
        SharedLibrary.LoadException e = assertThrows(SharedLibrary.LoadException.class,
                () -> SharedLibrary.open(Path.of("/nonexistent/libjkrun.so")));
        assertTrue(e.getMessage().contains("/nonexistent/libjkrun.so"), e.getMessage());
    }

    @Test
    void nativeBuffersAreBounded() {
        NativeBuffer b = NativeBuffer.allocate(24);
        assertEquals(0, b.address() & 15);
        assertEquals(0, b.getLong(16));
        b.putLong(16, -2);
        b.putShort(0, (short) 0x1234);
        assertEquals(0x34, b.getByte(0));
        assertEquals(-2, b.getLong(16));
        assertThrows(IndexOutOfBoundsException.class, () -> b.getLong(17));
        assertThrows(IndexOutOfBoundsException.class, () -> b.getInt(-1));
        assertThrows(IndexOutOfBoundsException.class, () -> b.putByte(24, (byte) 1));
        assertThrows(IndexOutOfBoundsException.class, () -> b.get(20, new byte[8], 0, 8));
        assertThrows(IndexOutOfBoundsException.class, () -> b.put(0, new byte[8], 4, 8));
        assertThrows(IndexOutOfBoundsException.class, () -> b.clear(8, 17));
        assertThrows(IndexOutOfBoundsException.class, () -> b.getLong(Long.MAX_VALUE));
        b.clear(16, 8);
        assertEquals(0, b.getLong(16));
        NativeBuffer view = NativeBuffer.wrap(b.address() + 8, 8);
        view.putInt(4, 99);
        assertEquals(99, b.getInt(12));
        assertThrows(IllegalArgumentException.class, () -> NativeBuffer.wrap(0, 8));
        assertThrows(IllegalArgumentException.class, () -> NativeBuffer.wrap(-8, 16));
        assertThrows(IllegalArgumentException.class, () -> NativeBuffer.allocate(-1));
    }
}
