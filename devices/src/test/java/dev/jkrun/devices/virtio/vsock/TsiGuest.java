package dev.jkrun.devices.virtio.vsock;

import static dev.jkrun.devices.virtio.vsock.VsockHeader.*;
import static org.junit.jupiter.api.Assertions.fail;

import dev.jkrun.devices.virtio.vsock.tsi.TsiMessages;
import dev.jkrun.libc.SockAddr;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * A fake guest kernel speaking TSI to a muxer, as libkrunfw's af_tsi.c does: control DGRAMs from its control port to
 * the host's ports 1024..1031, vsock streams to port 620, and packets for it collected from {@code nextRx} while the
 * reactor is pumped (real host sockets, real clock).
 */
final class TsiGuest {
    static final int BUF = 256 * 1024;
    final VsockMuxer mux;
    final TestReactor reactor;
    final List<VsockPacket> inbox = new ArrayList<>();
    private final byte[] buf = new byte[MAX_PAYLOAD];

    TsiGuest(VsockMuxer mux, TestReactor reactor) {
        this.mux = mux;
        this.reactor = reactor;
    }

    static ByteBuffer le(int n) { return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN); }

    /** A guest sockaddr as the guest's kernel lays it out (family native, port and address big-endian). */
    static byte[] sockaddr(InetAddress ip, int port) { return SockAddr.inet(ip, port).bytes(); }

    void dgram(int src, int dst, byte[] payload) {
        mux.send(new VsockPacket(new VsockHeader(GUEST_CID, HOST_CID, src, dst, payload.length, TYPE_DGRAM, OP_RW, 0,
                0, 0), payload));
    }

    void stream(int op, int src, int dst, byte[] payload, int fwdCnt) {
        mux.send(new VsockPacket(new VsockHeader(GUEST_CID, HOST_CID, src, dst, payload.length, TYPE_STREAM, op, 0,
                BUF, fwdCnt), payload));
    }

    void create(int ctl, int svm, int family, int type) {
        dgram(ctl, TsiMessages.PROXY_CREATE, le(8).putInt(svm).putShort((short) family).putShort((short) type).array());
    }

    static byte[] addressed(int svm, byte[] addr, int addrLen) {
        ByteBuffer b = le(8 + TsiMessages.ADDR_LEN).putInt(svm).putInt(addrLen);
        b.put(addr, 0, Math.min(addr.length, TsiMessages.ADDR_LEN));
        return b.array();
    }

    void connect(int ctl, int svm, byte[] addr) { dgram(ctl, TsiMessages.CONNECT, addressed(svm, addr, addr.length)); }

    void sendtoAddr(int ctl, int svm, byte[] addr) {
        dgram(ctl, TsiMessages.SENDTO_ADDR, addressed(svm, addr, addr.length));
    }

    void listen(int ctl, int svm, int vmPort, int backlog, byte[] addr) {
        ByteBuffer b = le(16 + TsiMessages.ADDR_LEN).putInt(svm).putInt(vmPort).putInt(backlog).putInt(addr.length);
        b.put(addr);
        dgram(ctl, TsiMessages.LISTEN, b.array());
    }

    void accept(int ctl, int svm, int flags) { dgram(ctl, TsiMessages.ACCEPT, le(8).putInt(svm).putInt(flags).array()); }

    void getname(int ctl, int svm, int svmPeer, boolean peer) {
        dgram(ctl, TsiMessages.GETNAME, le(12).putInt(svm).putInt(svmPeer).putInt(peer ? 1 : 0).array());
    }

    void release(int ctl, int svm, int svmPeer) {
        dgram(ctl, TsiMessages.PROXY_RELEASE, le(8).putInt(svm).putInt(svmPeer).array());
    }

    /** Pumps the reactor and drains rx until {@code done}, failing after 5 s. */
    void until(BooleanSupplier done, String what) {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (true) {
            drain();
            if (done.getAsBoolean()) {
                return;
            }
            if (System.nanoTime() > deadline) {
                fail("timed out waiting for " + what + "; inbox " + inbox);
            }
            reactor.pump();
            Thread.onSpinWait();
        }
    }

    void drain() {
        VsockHeader h;
        while ((h = mux.nextRx(buf, MAX_PAYLOAD)) != null) {
            inbox.add(new VsockPacket(h, Arrays.copyOf(buf, h.len())));
        }
    }

    /** The next packet to guest port {@code dst} (removed from the inbox). */
    VsockPacket take(int dst, String what) {
        VsockPacket[] got = new VsockPacket[1];
        until(() -> {
            for (VsockPacket p : inbox) {
                if (p.header().dstPort() == dst) {
                    got[0] = p;
                    return true;
                }
            }
            return false;
        }, what);
        inbox.remove(got[0]);
        return got[0];
    }

    /** The i32 result of the control reply from host port {@code type} to {@code ctl}. */
    int result(int ctl, int type) {
        VsockPacket p = take(ctl, "reply from " + type);
        VsockHeader h = p.header();
        if (h.type() != TYPE_DGRAM || h.op() != OP_RW || h.srcPort() != type || h.srcCid() != HOST_CID
                || h.dstCid() != GUEST_CID || p.payload().length < 4) {
            fail("not a control reply from " + type + ": " + h);
        }
        return ByteBuffer.wrap(p.payload()).order(ByteOrder.LITTLE_ENDIAN).getInt(0);
    }

    /** TSI_GETNAME's reply: result and the address (null on error). */
    record Name(int result, SockAddr addr) {}

    Name name(int ctl) {
        VsockPacket p = take(ctl, "GETNAME reply");
        if (p.payload().length != TsiMessages.GETNAME_REPLY_SIZE) {
            fail("GETNAME reply of " + p.payload().length + " bytes");
        }
        ByteBuffer b = ByteBuffer.wrap(p.payload()).order(ByteOrder.LITTLE_ENDIAN);
        int r = b.getInt(0);
        int len = b.getInt(4);
        return new Name(r, r == 0 ? SockAddr.ofRaw(Arrays.copyOfRange(p.payload(), 8, 8 + len)) : null);
    }

    boolean noneFor(int dst) {
        drain();
        return inbox.stream().noneMatch(p -> p.header().dstPort() == dst);
    }
}
