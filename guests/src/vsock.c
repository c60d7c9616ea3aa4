/* vsock: a virtio-vsock (id 19) driver test guest speaking raw packets (virtio 1.2 §5.10) to the host's unix-socket
 * bridges. Finds the first virtio_mmio.device= announcing id 19, sets up rx (0), tx (1) and event (2), checks
 * guest_cid == 3, keeps RX_BUFS receive buffers posted, and runs, in order:
 *   unmapped   REQUEST to an unconfigured host port gets RST
 *   malformed  short headers, lying lengths, unknown ops and types, foreign CIDs, RW without a connection: every tx
 *              chain comes back, nothing but RSTs answer them, and the device keeps working (the next steps)
 *   connect    REQUEST to 2:<connect_port> (a bridge to a host unix echo server) gets RESPONSE; "hello vsock" comes
 *              back; "bulk" makes the server send BULK bytes of a pattern, which arrive within the credit the
 *              guest grants (buf_alloc CREDIT, fwd_cnt raised by hand): never more than granted, nothing while
 *              the credit is spent, all of it once granted; then SHUTDOWN gets RST
 *   listen     the host connects to the bridge of <listen_port>; the device's REQUEST is first refused with RST (a
 *              guest that listens late), must come again, is accepted; "ping" from the host, "pong" back
 * cmdline: jkrun.vsock.connect_port= jkrun.vsock.listen_port= jkrun.vsock.unmapped_port=
 *          jkrun.test.timeout_ms=<ms> (30000) for each wait
 * Prints "CHECK <name> ok|FAIL <why> <value>" and "VSOCK ok <checks>" or "VSOCK FAIL <failures>"; exit 0 / 1. */
#include "guest.h"

enum { OP_REQUEST = 1, OP_RESPONSE = 2, OP_RST = 3, OP_SHUTDOWN = 4, OP_RW = 5, OP_CREDIT_UPDATE = 6,
       OP_CREDIT_REQUEST = 7 };
#define TYPE_STREAM 1
#define HOST_CID 2
#define GUEST_CID 3
#define HDR 44
#define RX_BUFS 6
#define RX_PAYLOAD 4096
#define CREDIT 4096
#define BULK 12288
#define D_NEXT 1
#define D_WRITE 2

struct hdr {
    uint64_t src_cid, dst_cid;
    uint32_t src_port, dst_port, len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct hdr) == HDR, "virtio_vsock_hdr is 44 bytes");

static struct virtio_dev dev;
static uint64_t timeout_ms;
static int failures, checks;

static uint8_t rxbuf[RX_BUFS][HDR + RX_PAYLOAD] __attribute__((aligned(64)));
static int rx_by_head[VQ_SIZE];
static uint8_t txbuf[HDR + 256] __attribute__((aligned(64)));

/* the last packet received */
static struct hdr rh;
static uint8_t rdata[RX_PAYLOAD];

static void check(const char *name, int ok, const char *why, uint64_t v) {
    checks++;
    if (ok) printf_lite("CHECK %s ok\n", name);
    else { printf_lite("CHECK %s FAIL %s 0x%lx\n", name, why, v); failures++; }
}

static void rx_post(int i) {
    struct vbuf b = { rxbuf[i], sizeof rxbuf[i], 1 };
    int head = virtio_add(&dev, 0, &b, 1);
    if (head < 0) fail("rx queue full");
    rx_by_head[head] = i;
}

/* Waits up to ms for the next packet into rh/rdata and gives its buffer back; 0 ok, else why not. */
static const char *rx_wait(uint64_t ms) {
    struct vring_used_elem e;
    const char *err = virtio_wait_used(&dev, 0, &e, ms);
    if (err) return err;
    int i = rx_by_head[e.id];
    if (e.len < HDR) { rx_post(i); virtio_notify(&dev, 0); return "rx packet shorter than its header"; }
    memcpy(&rh, rxbuf[i], HDR);
    uint32_t n = rh.len <= RX_PAYLOAD && rh.len <= e.len - HDR ? rh.len : 0;
    memcpy(rdata, rxbuf[i] + HDR, n);
    if (rh.len > RX_PAYLOAD || rh.len > e.len - HDR) { rx_post(i); virtio_notify(&dev, 0); return "rx len beyond the bytes written"; }
    rx_post(i);
    virtio_notify(&dev, 0);
    return 0;
}

/* Sends one chain of raw pieces on tx and waits until the device has used it. */
static const char *tx_raw(const struct vbuf *b, int n) {
    int head = virtio_add(&dev, 1, b, n);
    if (head < 0) return "tx queue full";
    virtio_notify(&dev, 1);
    struct vring_used_elem e;
    return virtio_wait_used(&dev, 1, &e, timeout_ms);
}

static struct hdr mk(uint32_t sport, uint32_t dport, uint16_t op, uint32_t len, uint32_t fwd) {
    struct hdr h = { GUEST_CID, HOST_CID, sport, dport, len, TYPE_STREAM, op, 0, CREDIT, fwd };
    return h;
}

/* header and payload in one descriptor, as Linux sends small packets */
static const char *tx(struct hdr h, const void *data, uint32_t n) {
    memcpy(txbuf, &h, HDR);
    if (n) memcpy(txbuf + HDR, data, n);
    struct vbuf b = { txbuf, HDR + n, 0 };
    return tx_raw(&b, 1);
}

/* The host may connect to the listen bridge while earlier steps run: its REQUEST is kept for listen(). */
static uint32_t lport;
static struct hdr stashed;
static int have_stashed;

/* Next packet for port, skipping credit traffic (the device may ask for or report credit at any time) and keeping
 * an early REQUEST for the listen port. */
static const char *rx_for(uint32_t port, uint64_t ms) {
    if (port == lport && have_stashed) { rh = stashed; have_stashed = 0; return 0; }
    for (;;) {
        const char *err = rx_wait(ms);
        if (err) return err;
        if (rh.op == OP_CREDIT_REQUEST || rh.op == OP_CREDIT_UPDATE) continue;
        if (port != lport && lport && rh.op == OP_REQUEST && rh.dst_port == lport) {
            stashed = rh; have_stashed = 1; continue;
        }
        return 0;
    }
}

static int header_ok(uint32_t sport, uint32_t dport) {
    return rh.src_cid == HOST_CID && rh.dst_cid == GUEST_CID && rh.src_port == sport && rh.dst_port == dport
        && rh.type == TYPE_STREAM;
}

static void unmapped(uint32_t port) {
    const char *err = tx(mk(4000, port, OP_REQUEST, 0, 0), 0, 0);
    if (!err) err = rx_for(4000, timeout_ms);
    check("unmapped: REQUEST to an unconfigured port gets RST", !err && header_ok(port, 4000) && rh.op == OP_RST,
          err ? err : "got op", rh.op);
}

static void malformed(uint32_t port) {
    static uint8_t junk[HDR + 64];
    int bad = 0;
    struct hdr h;
    /* 1. a chain shorter than the header */
    struct vbuf b1 = { junk, 10, 0 };
    if (tx_raw(&b1, 1)) bad |= 1;
    /* 2. len says 64 KiB + 1, no payload follows */
    h = mk(5002, port, OP_RW, 65537, 0); memcpy(junk, &h, HDR);
    struct vbuf b2 = { junk, HDR, 0 };
    if (tx_raw(&b2, 1)) bad |= 2;
    /* 3. len 64 with 20 bytes present, split over two descriptors */
    h = mk(5003, port, OP_RW, 64, 0); memcpy(junk, &h, HDR);
    struct vbuf b3[2] = { { junk, HDR, 0 }, { junk + HDR, 20, 0 } };
    if (tx_raw(b3, 2)) bad |= 4;
    /* 4. unknown type; 5. unknown op; 6. foreign source CID; 7. a destination that is not the host */
    h = mk(5004, port, OP_REQUEST, 0, 0); h.type = 7; if (tx(h, 0, 0)) bad |= 8;
    h = mk(5005, port, 99, 0, 0); if (tx(h, 0, 0)) bad |= 16;
    h = mk(5006, port, OP_REQUEST, 0, 0); h.src_cid = 77; if (tx(h, 0, 0)) bad |= 32;
    h = mk(5007, port, OP_REQUEST, 0, 0); h.dst_cid = 0xFFFFFFFFFFFFFFFFULL; if (tx(h, 0, 0)) bad |= 64;
    /* 8. a header in a device-writable descriptor */
    h = mk(5008, port, OP_REQUEST, 0, 0); memcpy(junk, &h, HDR);
    struct vbuf b8 = { junk, HDR, 1 };
    if (tx_raw(&b8, 1)) bad |= 128;
    /* 9. RW on no connection: RST expected */
    h = mk(5009, port, OP_RW, 4, 0);
    if (tx(h, "abcd", 4)) bad |= 256;
    check("malformed: every tx chain comes back", bad == 0, "failed sends mask", (uint64_t)bad);
    /* Only RSTs to the ports used above may answer; the RW on no connection must get one. */
    int rst9 = 0, other = 0;
    while (!rx_for(0, 300)) {
        if (rh.op == OP_RST && rh.dst_port >= 5002 && rh.dst_port <= 5009) { if (rh.dst_port == 5009) rst9 = 1; }
        else other++;
    }
    check("malformed: RW without a connection gets RST", rst9, "no RST", 0);
    check("malformed: nothing but RSTs answers them", other == 0, "other packets", (uint64_t)other);
}

static uint8_t pattern(uint32_t i) { return (uint8_t)(i * 31 + 7); }

static void connect(uint32_t port) {
    const uint32_t me = 1000;
    uint32_t fwd = 0;
    const char *err = tx(mk(me, port, OP_REQUEST, 0, 0), 0, 0);
    if (!err) err = rx_for(me, timeout_ms);
    check("connect: REQUEST gets RESPONSE", !err && header_ok(port, me) && rh.op == OP_RESPONSE, err ? err : "op", rh.op);
    if (err || rh.op != OP_RESPONSE) return;
    check("connect: the host advertises credit", rh.buf_alloc > 0, "buf_alloc", rh.buf_alloc);

    /* rxcnt: RW bytes received on this connection; the device may have rxcnt - fwd <= CREDIT in flight */
    uint32_t rxcnt = 0;
    err = tx(mk(me, port, OP_RW, 11, fwd), "hello vsock", 11);
    uint32_t got = 0; static char echo[16];
    while (!err && got < 11) {
        err = rx_for(me, timeout_ms);
        if (err || rh.op != OP_RW || rh.len > 11 - got) break;
        memcpy(echo + got, rdata, rh.len); got += rh.len; rxcnt += rh.len;
    }
    check("connect: echo through the host unix socket", !err && got == 11 && !memcmp(echo, "hello vsock", 11),
          err ? err : "bytes", got);

    /* bulk: the server sends BULK bytes of pattern() */
    fwd = rxcnt;
    err = tx(mk(me, port, OP_RW, 4, fwd), "bulk", 4);
    uint32_t received = 0, over = 0, mism = 0, early = 0;
    while (!err && received < BULK) {
        err = rx_for(me, timeout_ms);
        if (err) break;
        if (rh.op != OP_RW) { err = "non-RW packet during bulk"; break; }
        for (uint32_t k = 0; k < rh.len; k++) if (rdata[k] != pattern(received + k)) mism++;
        received += rh.len; rxcnt += rh.len;
        if (rxcnt - fwd > CREDIT) over++;
        if (rxcnt - fwd >= CREDIT && received < BULK) {
            /* credit spent: nothing may come until we grant more */
            if (!rx_for(me, 500)) {
                early++;
                if (rh.op == OP_RW) { received += rh.len; rxcnt += rh.len; }
            }
            fwd = rxcnt;
            err = tx(mk(me, port, OP_CREDIT_UPDATE, 0, fwd), 0, 0);
        }
    }
    check("credit: the bulk data arrived whole and in order", !err && received == BULK && !mism, err ? err : "received",
          received);
    check("credit: never more than granted", !over && !early, "overruns", over + early);

    err = tx(mk(me, port, OP_CREDIT_UPDATE, 0, rxcnt), 0, 0);
    if (!err) { struct hdr h = mk(me, port, OP_SHUTDOWN, 0, rxcnt); h.flags = 3; err = tx(h, 0, 0); }
    if (!err) err = rx_for(me, timeout_ms);
    check("connect: SHUTDOWN gets RST", !err && header_ok(port, me) && rh.op == OP_RST, err ? err : "op", rh.op);
}

static void listen(uint32_t port) {
    const char *err = rx_for(port, timeout_ms);
    int ok = !err && rh.op == OP_REQUEST && rh.dst_port == port && rh.src_cid == HOST_CID;
    check("listen: the host's connection arrives as REQUEST", ok, err ? err : "op", rh.op);
    if (!ok) return;
    uint32_t peer = rh.src_port;
    err = tx(mk(port, peer, OP_RST, 0, 0), 0, 0);    /* not listening yet */
    if (!err) err = rx_for(port, timeout_ms);
    ok = !err && rh.op == OP_REQUEST && rh.dst_port == port;
    check("listen: a refused REQUEST comes again", ok, err ? err : "op", rh.op);
    if (!ok) return;
    peer = rh.src_port;
    err = tx(mk(port, peer, OP_RESPONSE, 0, 0), 0, 0);
    if (!err) err = rx_for(port, timeout_ms);
    ok = !err && rh.op == OP_RW && rh.src_port == peer && rh.len == 4 && !memcmp(rdata, "ping", 4);
    check("listen: data from the host connection", ok, err ? err : "op", rh.op);
    if (!ok) return;
    err = tx(mk(port, peer, OP_RW, 4, 4), "pong", 4);
    if (!err) err = rx_for(port, timeout_ms);   /* the host closes after reading "pong" */
    check("listen: the host's close arrives", !err && (rh.op == OP_SHUTDOWN || rh.op == OP_RST), err ? err : "op", rh.op);
    if (!err && rh.op == OP_SHUTDOWN) tx(mk(port, peer, OP_RST, 0, 4), 0, 0);
}

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    paging_init();
    idt_init();
    timeout_ms = cmdline_u64("jkrun.test.timeout_ms=", 30000);
    uint32_t cport = (uint32_t)cmdline_u64("jkrun.vsock.connect_port=", 0);
    lport = (uint32_t)cmdline_u64("jkrun.vsock.listen_port=", 0);
    uint32_t uport = (uint32_t)cmdline_u64("jkrun.vsock.unmapped_port=", 9);
    uintptr_t base = 0; int irq = -1, found = 0;
    for (int k = 0; !found && !virtio_find(k, &base, &irq); k++) found = readl(base + 0x08) == 19;
    if (!found) fail("no virtio-vsock device announced");
    const char *err = virtio_init(&dev, base, irq, 19, 0);
    for (int q = 0; !err && q < 3; q++) err = virtio_setup_queue(&dev, q);
    if (!err) err = virtio_driver_ok(&dev);
    if (err) fail(err);
    virtio_enable_irq(&dev);
    uint64_t cid = readl(base + 0x100) | (uint64_t)readl(base + 0x104) << 32;
    check("config: guest_cid is 3", cid == GUEST_CID, "cid", cid);
    for (int i = 0; i < RX_BUFS; i++) rx_post(i);
    virtio_notify(&dev, 0);

    unmapped(uport);
    if (cport) malformed(cport);
    if (cport) connect(cport);
    if (lport) listen(lport);

    if (failures) { printf_lite("VSOCK FAIL %d\n", failures); return 1; }
    printf_lite("VSOCK ok %d\n", checks);
    return 0;
}
