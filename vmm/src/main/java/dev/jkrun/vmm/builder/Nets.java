package dev.jkrun.vmm.builder;

import dev.jkrun.devices.virtio.net.DatagramBackend;
import dev.jkrun.devices.virtio.net.NetBackend;
import dev.jkrun.devices.virtio.net.NetHeader;
import dev.jkrun.devices.virtio.net.StreamBackend;
import dev.jkrun.devices.virtio.net.TapBackend;
import dev.jkrun.devices.virtio.net.VirtioNet;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.SockAddr;
import dev.jkrun.libc.Sockets;
import dev.jkrun.libc.Tun;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.NetDeviceConfig;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/** Builds a virtio-net device: opens (or starts) its backend as libkrun's net backends do. */
final class Nets {
    private static final AtomicLong COUNTER = new AtomicLong();
    /** The user passt runs as when started by root (its own choice then, made explicit). */
    private static final int NOBODY = 65534;

    private Nets() {}

    static VirtioNet device(NetDeviceConfig c, List<AutoCloseable> resources) {
        NetBackend backend = open(c, resources);
        try {
            return new VirtioNet(c.name(), c.mac(), c.features(), backend);
        } catch (IllegalArgumentException e) {
            backend.close();
            throw new ConfigurationException("net." + c.name(), e.getMessage());
        }
    }

    private static NetBackend open(NetDeviceConfig c, List<AutoCloseable> resources) {
        String field = "net." + c.name() + ".backend";
        try {
            if (c.backend() instanceof NetDeviceConfig.UnixStreamPath p) {
                Sockets.Connecting s = Sockets.connectUnix(p.path());
                return new StreamBackend(s.fd(), p.path().toString());
            }
            if (c.backend() instanceof NetDeviceConfig.UnixStreamFd f) {
                return new StreamBackend(socketOf(f.fd(), Sockets.SOCK_STREAM, field), "fd " + f.fd());
            }
            if (c.backend() instanceof NetDeviceConfig.UnixGramFd f) {
                return new DatagramBackend(socketOf(f.fd(), Sockets.SOCK_DGRAM, field), "fd " + f.fd());
            }
            if (c.backend() instanceof NetDeviceConfig.UnixGramPath p) {
                return unixgram(p, resources);
            }
            if (c.backend() instanceof NetDeviceConfig.Tap t) {
                // offloads follow the negotiated features (TapBackend.negotiated); none until then
                return new TapBackend(Tun.openTap(t.name(), NetHeader.SIZE), t.name());
            }
            if (c.backend() instanceof NetDeviceConfig.Passt p) {
                return passt(p, c.name(), resources);
            }
        } catch (NativeCallException e) {
            throw new ConfigurationException(field, e.getMessage());
        }
        throw new ConfigurationException(field, "no backend for " + c.backend());
    }

    /** A duplicate of the caller's descriptor, checked to be a socket of {@code type}. */
    private static FileDescriptor socketOf(int fd, int type, String field) {
        int actual;
        try {
            actual = Sockets.socketType(fd);
        } catch (NativeCallException e) {
            throw new ConfigurationException(field, "descriptor " + fd + " is not a socket: " + e.getMessage());
        }
        if (actual != type) {
            throw new ConfigurationException(field, "descriptor " + fd + " is a " + (actual == Sockets.SOCK_STREAM
                    ? "stream" : actual == Sockets.SOCK_DGRAM ? "datagram" : "type " + actual) + " socket; "
                    + (type == Sockets.SOCK_STREAM ? "unixstream needs SOCK_STREAM" : "unixgram needs SOCK_DGRAM"));
        }
        return FileDescriptor.duplicate(fd, "net socket fd " + fd);
    }

    /**
     * libkrun's unixgram by path: a socket of the VMM's own bound at {@code $TMPDIR/krun-net-<pid>-<n>.sock} (so the
     * peer can answer), connected to the peer; with vfkit's handshake the datagram "VFKT" goes first. The local
     * socket file is removed with the VM.
     */
    private static NetBackend unixgram(NetDeviceConfig.UnixGramPath p, List<AutoCloseable> resources) {
        Path local = Path.of(System.getProperty("java.io.tmpdir"),
                "krun-net-" + ProcessHandle.current().pid() + "-" + COUNTER.getAndIncrement() + ".sock");
        FileDescriptor fd = Sockets.socket(SockAddr.AF_UNIX, Sockets.SOCK_DGRAM);
        try {
            Files.deleteIfExists(local);
            Sockets.bind(fd, SockAddr.unix(local));
            resources.add(() -> Files.deleteIfExists(local));
            Sockets.connect(fd, SockAddr.unix(p.path()));
            if (p.vfkitMagic() && Sockets.write(fd, ByteBuffer.wrap("VFKT".getBytes(StandardCharsets.US_ASCII))) != 4) {
                throw new ConfigurationException("net.backend", "the vfkit handshake to " + p.path() + " was not taken");
            }
            return new DatagramBackend(fd, p.path().toString());
        } catch (IOException e) {
            fd.close();
            throw new ConfigurationException("net.backend", "cannot bind " + local + ": " + e.getMessage());
        } catch (RuntimeException e) {
            fd.close();
            throw e;
        }
    }

    /**
     * Starts passt listening on a socket in a private directory ({@code passt --one-off --socket PATH}) and connects to
     * it: the one-flag network. passt copies its addressing from the host and offers DHCP. A socket, not an inherited
     * descriptor: the JVM closes every descriptor above 2 in a child. passt exits when the VM's end closes
     * ({@code --one-off}) and is terminated with the VM in any case.
     */
    private static NetBackend passt(NetDeviceConfig.Passt p, String nic, List<AutoCloseable> resources) {
        String field = "net." + nic + ".backend";
        if (!Files.isExecutable(p.executable())) {
            throw new ConfigurationException(field, "passt is not installed at " + p.executable() + " (Debian: apt install passt)");
        }
        Path dir;
        try {
            dir = Files.createTempDirectory("jkrun-passt-"); // 0700: no one else connects first
        } catch (IOException e) {
            throw new ConfigurationException(field, "cannot make a directory for passt's socket: " + e.getMessage());
        }
        Path sock = dir.resolve("passt.sock");
        List<String> argv = new java.util.ArrayList<>(List.of(p.executable().toString(), "--foreground", "--quiet",
                "--one-off", "--socket", sock.toString()));
        Process proc;
        try {
            if (((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).intValue() == 0) {
                // passt will not run as root: it becomes nobody before it binds, so the directory must be nobody's
                Files.setAttribute(dir, "unix:uid", NOBODY);
                Files.setAttribute(dir, "unix:gid", NOBODY);
                argv.addAll(List.of("--runas", NOBODY + ":" + NOBODY));
            }
            proc = new ProcessBuilder(argv).redirectErrorStream(true)
                    .redirectOutput(dir.resolve("passt.log").toFile()).start();
        } catch (IOException e) {
            throw new ConfigurationException(field, "cannot start passt: " + e.getMessage());
        }
        resources.add(() -> {
            proc.destroy();
            if (!proc.waitFor(2, TimeUnit.SECONDS)) {
                proc.destroyForcibly();
            }
            Files.deleteIfExists(sock);
            Files.deleteIfExists(dir.resolve("passt.log"));
            Files.deleteIfExists(dir);
        });
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
            if (Files.exists(sock)) {
                try {
                    return new StreamBackend(Sockets.connectUnix(sock).fd(), "passt (pid " + proc.pid() + ")");
                } catch (NativeCallException e) {
                    // bound, not listening yet
                }
            }
            if (!proc.isAlive() || System.nanoTime() > deadline) {
                String log = "";
                try {
                    log = Files.readString(dir.resolve("passt.log")).strip();
                } catch (IOException ignored) {
                    // no log then
                }
                throw new ConfigurationException(field, "passt " + (proc.isAlive() ? "did not listen on " + sock + " within 10 s"
                        : "exited with status " + proc.exitValue()) + (log.isEmpty() ? "" : ": " + log));
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ConfigurationException(field, "interrupted while waiting for passt");
            }
        }
    }
}
