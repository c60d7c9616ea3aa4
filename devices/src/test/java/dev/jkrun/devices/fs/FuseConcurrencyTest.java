package dev.jkrun.devices.fs;

import static org.junit.jupiter.api.Assertions.*;

import dev.jkrun.devices.fs.fuse.Fuse;
import dev.jkrun.devices.fs.fuse.FuseServer;
import dev.jkrun.devices.fs.passthrough.PassthroughFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two requests in flight at once, as the guest's two virtio-fs queues deliver them: a FORGET or RELEASE must never
 * close a descriptor that a concurrent request is still using, or that request reaches whatever file gets the number
 * next — here a canary in another, read-only share.
 */
class FuseConcurrencyTest {
    static final long ROOT = 1;
    static final int O_RDONLY = 0, O_RDWR = 2;
    static final String TARGET = "target-content";
    static final String CANARY = "CANARY-CANARY-CANARY-CANARY-CANARY";
    static final long TARGET_MTIME = 2_000_000_000L, CANARY_MTIME = 1_000_000_000L;
    static final long HAMMER_NANOS = TimeUnit.SECONDS.toNanos(3);

    @TempDir
    Path dir;
    Path share, canary;
    PassthroughFs fs, roFs;
    FuseServer server;
    FuseClient canaries;
    long targetIno;

    @BeforeEach
    void setUp() throws Exception {
        share = Files.createDirectory(dir.resolve("share"));
        Path ro = Files.createDirectory(dir.resolve("ro"));
        Files.writeString(share.resolve("t"), TARGET);
        targetIno = (long) Files.getAttribute(share.resolve("t"), "unix:ino");
        canary = ro.resolve("canary");
        Files.writeString(canary, CANARY);
        Files.setLastModifiedTime(canary, FileTime.from(CANARY_MTIME, TimeUnit.SECONDS));
        fs = new PassthroughFs(share, PassthroughOptions.defaults());
        server = new FuseServer(fs);
        new FuseClient(server).init();
        roFs = new PassthroughFs(ro, PassthroughOptions.builder().readOnly(true).build());
        canaries = new FuseClient(new FuseServer(roFs, true));
        canaries.init();
    }

    @AfterEach
    void tearDown() {
        fs.close();
        roFs.close();
    }

    @Test
    void forgetAndReleaseNeverCloseADescriptorInUse() throws Exception {
        FuseClient hiprio = new FuseClient(server);
        FuseClient requests = new FuseClient(server);
        List<String> wrong = new CopyOnWriteArrayList<>();
        AtomicBoolean done = new AtomicBoolean();
        long[] current = new long[2];
        current[0] = hiprio.lookupNode(ROOT, "t");
        current[1] = hiprio.openFh(current[0], O_RDWR);
        Object lock = new Object();

        Thread user = new Thread(() -> {
            while (!done.get()) {
                long node, fh;
                synchronized (lock) {
                    node = current[0];
                    fh = current[1];
                }
                int valid = SetAttr.FATTR_MODE | SetAttr.FATTR_SIZE | SetAttr.FATTR_MTIME;
                FuseClient.Reply r = requests.setattr(node, valid, 0, TARGET.length(), 0, TARGET_MTIME, 0100644, 0, 0);
                if (r.error() == 0 && r.attrIno(16) != targetIno) {
                    wrong.add("SETATTR answered for inode " + r.attrIno(16));
                }
                r = requests.getattr(node);
                if (r.error() == 0 && r.attrIno(16) != targetIno) {
                    wrong.add("GETATTR answered for inode " + r.attrIno(16));
                }
                check(wrong, "READ", requests.read(node, fh, 0, 64));
                r = requests.open(node, O_RDONLY);
                if (r.error() == 0) {
                    long own = r.body().getLong(0);
                    check(wrong, "READ after OPEN", requests.read(node, own, 0, 64));
                    requests.release(Fuse.RELEASE, node, own);
                }
            }
        }, "request-queue");
        user.start();
        long end = System.nanoTime() + HAMMER_NANOS;
        int rounds = 0;
        try {
            while (System.nanoTime() < end && wrong.isEmpty()) {
                long node, fh;
                synchronized (lock) {
                    node = current[0];
                    fh = current[1];
                }
                hiprio.release(Fuse.RELEASE, node, fh);
                hiprio.forget(node, 1);
                // The numbers just freed go to the next descriptors opened in the process: the other share's.
                long cn = canaries.lookupNode(ROOT, "canary");
                long cfh = canaries.openFh(cn, O_RDONLY);
                for (int spin = 0; spin < 200; spin++) {
                    Thread.onSpinWait();
                }
                canaries.release(Fuse.RELEASE, cn, cfh).ok();
                canaries.forget(cn, 1);
                long n = hiprio.lookupNode(ROOT, "t");
                long f = hiprio.openFh(n, O_RDWR);
                synchronized (lock) {
                    current[0] = n;
                    current[1] = f;
                }
                rounds++;
            }
        } finally {
            done.set(true);
            user.join(10_000);
        }
        assertFalse(user.isAlive(), "request thread stuck");
        assertEquals(List.of(), wrong, "requests reached another file (" + rounds + " rounds)");
        assertEquals(CANARY, Files.readString(canary), "canary content");
        assertEquals(0100644, (int) Files.getAttribute(canary, "unix:mode") & 0177777, "canary mode");
        assertEquals(CANARY_MTIME, Files.getLastModifiedTime(canary).to(TimeUnit.SECONDS), "canary mtime");
        assertTrue(rounds > 100, "only " + rounds + " rounds");
    }

    static void check(List<String> wrong, String what, FuseClient.Reply r) {
        if (r.error() == 0) {
            String s = new String(r.bytes(), StandardCharsets.UTF_8);
            if (!TARGET.startsWith(s)) {
                wrong.add(what + " returned '" + s + "'");
            }
        }
    }
}
