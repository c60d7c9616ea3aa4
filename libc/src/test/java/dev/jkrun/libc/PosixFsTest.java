package dev.jkrun.libc;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PosixFsTest {
    @TempDir
    Path dir;

    @Test
    void statMatchesJava() throws Exception {
        Files.writeString(dir.resolve("f"), "12345");
        try (FileDescriptor d = PosixFs.openat(null, PosixFs.bytes(dir.toString()), PosixFs.O_PATH | PosixFs.O_DIRECTORY, 0)) {
            Stat s = PosixFs.fstatat(d, PosixFs.bytes("f"), PosixFs.AT_SYMLINK_NOFOLLOW);
            assertEquals(5, s.size());
            assertTrue(s.isRegular());
            assertEquals(Files.getAttribute(dir.resolve("f"), "unix:ino"), s.ino());
            assertEquals(Files.getAttribute(dir.resolve("f"), "unix:nlink"), (int) s.nlink());
            assertEquals(Files.getLastModifiedTime(dir.resolve("f")).toMillis() / 1000, s.mtimeSec());
            NativeCallException e = assertThrows(NativeCallException.class,
                    () -> PosixFs.fstatat(d, PosixFs.bytes("missing"), 0));
            assertEquals(Errno.ENOENT, e.errno());
        }
    }

    @Test
    void fstatfsTypeIsTheMagicNumber() throws Exception {
        try (FileDescriptor proc = PosixFs.openat(null, PosixFs.bytes("/proc"), PosixFs.O_PATH, 0);
             FileDescriptor root = PosixFs.openat(null, PosixFs.bytes("/"), PosixFs.O_PATH, 0);
             FileDescriptor tmp = PosixFs.openat(null, PosixFs.bytes(dir.toString()), PosixFs.O_PATH, 0)) {
            assertEquals(0x9fa0L, PosixFs.fstatfsType(proc)); // PROC_SUPER_MAGIC
            assertNotEquals(0x9fa0L, PosixFs.fstatfsType(root));
            // the whole word agrees with coreutils' statfs(2) of the same directory
            Process p = new ProcessBuilder("stat", "-f", "-c", "%t", dir.toString()).start();
            String hex = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
            assertEquals(0, p.waitFor());
            assertEquals(Long.parseUnsignedLong(hex, 16), PosixFs.fstatfsType(tmp));
        }
    }

    @Test
    void preadPwriteRespectBufferPositions() throws Exception {
        try (FileDescriptor d = PosixFs.openat(null, PosixFs.bytes(dir.toString()), PosixFs.O_PATH | PosixFs.O_DIRECTORY, 0);
             FileDescriptor f = PosixFs.openat(d, PosixFs.bytes("f"), PosixFs.O_RDWR | PosixFs.O_CREAT, 0644)) {
            for (ByteBuffer b : new ByteBuffer[] {ByteBuffer.allocateDirect(16), ByteBuffer.allocate(16)}) {
                b.put("xxabcdef".getBytes(StandardCharsets.US_ASCII)).flip().position(2);
                assertEquals(6, PosixFs.pwrite(f, b, 0));
                assertEquals(8, b.position());
                ByteBuffer r = b.isDirect() ? ByteBuffer.allocateDirect(16) : ByteBuffer.allocate(16);
                r.position(5).limit(9);
                assertEquals(4, PosixFs.pread(f, r, 1));
                assertEquals(9, r.position());
                byte[] got = new byte[4];
                r.position(5);
                r.get(got);
                assertEquals("bcde", new String(got, StandardCharsets.US_ASCII));
            }
        }
    }

    @Test
    void vectoredReadsAndWritesFollowTheBuffersInTurn() throws Exception {
        try (FileDescriptor d = PosixFs.openat(null, PosixFs.bytes(dir.toString()), PosixFs.O_PATH | PosixFs.O_DIRECTORY, 0);
             FileDescriptor f = PosixFs.openat(d, PosixFs.bytes("v"), PosixFs.O_RDWR | PosixFs.O_CREAT, 0644)) {
            // More buffers than one preadv takes, of 3 bytes each, slices at positions, all direct.
            int n = PosixFs.IOV_MAX + 7;
            ByteBuffer backing = ByteBuffer.allocateDirect(4 * n);
            ByteBuffer[] out = new ByteBuffer[n];
            for (int i = 0; i < n; i++) {
                out[i] = backing.slice(4 * i, 4).put((byte) 0x55).put((byte) i).put((byte) (i >> 8)).put((byte) 1)
                        .position(1).limit(4);
            }
            assertEquals(3L * n, PosixFs.pwritev(f, out, 10));
            assertEquals(4, out[n - 1].position());
            assertEquals(10 + 3L * n, Files.size(dir.resolve("v")));
            byte[] file = Files.readAllBytes(dir.resolve("v"));
            assertEquals((byte) (n - 1), file[10 + 3 * (n - 1)]);
            // Read back into mixed heap and direct buffers; past the end of file only what is there.
            ByteBuffer[] in = new ByteBuffer[n + 1];
            for (int i = 0; i < in.length; i++) {
                in[i] = i % 2 == 0 ? ByteBuffer.allocate(3) : ByteBuffer.allocateDirect(3);
            }
            assertEquals(3L * n, PosixFs.preadv(f, in, 10));
            assertEquals(0, in[n].position(), "nothing past the end of file");
            for (int i = 0; i < n; i++) {
                assertEquals((byte) i, in[i].get(0), "buffer " + i);
                assertEquals(1, in[i].get(2));
            }
            // All direct: the same through preadv, starting inside the file.
            ByteBuffer[] direct = {ByteBuffer.allocateDirect(2), ByteBuffer.allocateDirect(5)};
            assertEquals(7, PosixFs.preadv(f, direct, 10 + 3L * n - 7));
            assertEquals(5, direct[1].position());
            assertEquals(2, PosixFs.preadv(f, new ByteBuffer[] {ByteBuffer.allocateDirect(9)}, 10 + 3L * n - 2));
        }
    }

    @Test
    void getdentsListsEverything() throws Exception {
        for (int i = 0; i < 100; i++) {
            Files.createFile(dir.resolve("n" + i));
        }
        try (FileDescriptor d = PosixFs.openat(null, PosixFs.bytes(dir.toString()), PosixFs.O_RDONLY | PosixFs.O_DIRECTORY, 0)) {
            int count = 0;
            while (true) {
                List<PosixFs.DirEntry> batch = PosixFs.getdents64(d, 512);
                if (batch.isEmpty()) {
                    break;
                }
                count += batch.size();
            }
            assertEquals(102, count);
        }
    }
}
