/* tsi: a hostile TSI guest. Speaks libkrunfw's TSI control protocol by hand over a raw virtio-vsock driver (as
 * vsock.c does for streams): control messages are vsock DGRAMs from a guest control port to host CID 2 at the port
 * equal to the message type (PROXY_CREATE 1024, CONNECT 1025, GETNAME 1026, SENDTO_ADDR 1027, SENDTO_DATA 1028,
 * LISTEN 1029, ACCEPT 1030, PROXY_RELEASE 1031); replies come back as DGRAM OP_RW from that port. It negotiates
 * VIRTIO_VSOCK_F_DGRAM (offered only with TSI on) and runs, in order:
 *   legit      a TCP proxy CONNECTs to the host's echo server, GETNAME reports the peer, the stream REQUEST from the
 *              proxy's port to 2:620 gets RESPONSE and "hello tsi" comes back; a UDP proxy sends "hello udp" to the
 *              host's UDP echo server and gets it back. Run first and again after every phase below.
 *   malformed  messages too short for their type, addr_len beyond the payload / beyond 128 / 2^32-1 / too small for
 *              the family, unknown families, unknown message types (1023, 1032, 2^32-1, 620), ops other than RW,
 *              foreign CIDs, headers whose len lies or that are not readable, messages with no reply; a CONNECT split
 *              over three descriptors and one of 64 KiB: each gets its documented -errno or nothing at all
 *   state      CONNECT/LISTEN/ACCEPT/GETNAME of proxies never created, a second PROXY_CREATE over a connected proxy,
 *              RELEASE of unknown proxies and twice, CONNECT on a connected one and on one still connecting (to a
 *              server whose accept queue is full), RELEASE while connecting, LISTEN on an unpublished port, on
 *              127.0.0.1, on port 0, on a datagram proxy, and a second listener on the published port; CONNECT and
 *              SENDTO to addresses the outbound policy denies (192.0.2.0/24, 203.0.113.0/24, 127.0.0.1 on another
 *              port); AF_UNIX with the unix scope off
 *   caps       proxies up to max_proxies and host sockets up to max_fds (ENOBUFS / EMFILE past them), 500 more
 *              PROXY_CREATEs get no answer, and after RELEASE everything is free again
 *   flood      200 GETNAMEs sent without reading rx: the device stops taking tx once backlog replies wait (the
 *              vsock config's rxBacklog) instead of dropping any; then each arrives once and in order
 * After each group: "nothing else arrives" (a GETNAME of an unknown proxy from another control port must be the very
 * next packet) and "every tx chain comes back".
 *
 * cmdline: jkrun.tsi.echo_port= (TCP echo on 127.0.0.1, allowed by the policy)  jkrun.tsi.udp_port= (UDP echo)
 *          jkrun.tsi.stall_port= (optional: a 127.0.0.1 TCP listener, allowed, whose accept queue is full)
 *          jkrun.tsi.denied_port= (a 127.0.0.1 port the policy denies)  jkrun.tsi.host_port= (where guest port
 *          8080 is published)  jkrun.tsi.max_proxies= (8)  jkrun.tsi.max_fds= (6)  jkrun.tsi.backlog= (16)
 *          jkrun.test.timeout_ms= (10000) for each wait
 * The host's config must publish guest port 8080 only, keep exposeEphemeral off and the unix scope off, and bind
 * published listeners on 127.0.0.1. Needs no host resource but the echo servers: every other destination is one the
 * policy refuses before any connect.
 * Prints "CHECK <name> ok|FAIL <why> <value>", "INFO ..." on unexpected packets, "TSI ok <checks>" or
 * "TSI FAIL <failures>"; exit 0 / 1. */
#include "guest.h"

enum { OP_REQUEST = 1, OP_RESPONSE = 2, OP_RST = 3, OP_SHUTDOWN = 4, OP_RW = 5, OP_CREDIT_UPDATE = 6,
       OP_CREDIT_REQUEST = 7 };
enum { TYPE_STREAM = 1, TYPE_DGRAM = 3 };
enum { PROXY_CREATE = 1024, CONNECT = 1025, GETNAME = 1026, SENDTO_ADDR = 1027, SENDTO_DATA = 1028, LISTEN = 1029,
       ACCEPT = 1030, PROXY_RELEASE = 1031 };
enum { FAM_UNIX = 1, FAM_INET = 2, FAM_INET6 = 10 };
enum { T_STREAM = 1, T_DGRAM = 2 };
enum { EPERM = 1, EAGAIN = 11, EINVAL = 22, EMFILE = 24, EOPNOTSUPP = 95, EAFNOSUPPORT = 97, EADDRINUSE = 98,
       EADDRNOTAVAIL = 99, ENOBUFS = 105, EISCONN = 106, ENOTCONN = 107, ECONNREFUSED = 111, EALREADY = 114 };
#define HOST_CID 2
#define GUEST_CID 3
#define HDR 44
#define TSI_PORT 620
#define ADDR_LEN 128
#define GETNAME_RSP (8 + ADDR_LEN)
#define F_DGRAM (1ULL << 3)
#define NONBLOCK 04000
#define RX_BUFS 8
#define RX_PAYLOAD 4096
#define CREDIT 4096
#define BIG 65536                  /* the largest payload a packet may carry */
#define CTL 50000                  /* the control port replies go to */
#define SENTINEL_CTL 50001         /* quiet()'s */
#define FLOOD_CTL 51000            /* flood(): one control port per request */
#define FLOOD_N 200
#define NO_PROXY 0x7fff0000u
#define PUBLISHED 8080

struct hdr {
    uint64_t src_cid, dst_cid;
    uint32_t src_port, dst_port, len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct hdr) == HDR, "virtio_vsock_hdr is 44 bytes");

struct sa { uint8_t b[ADDR_LEN]; uint32_t len; };

static struct virtio_dev dev;
static uint64_t timeout_ms;
static int failures, checks, tx_lost;
static uint32_t echo_port, udp_port, stall_port, denied_port, host_port, max_proxies, max_fds, backlog;

static uint8_t rxbuf[RX_BUFS][HDR + RX_PAYLOAD] __attribute__((aligned(64)));
static int rx_by_head[VQ_SIZE];
static uint8_t txbuf[HDR + BIG] __attribute__((aligned(64)));
static uint8_t flood_tx[VQ_SIZE][HDR + 16] __attribute__((aligned(64)));
static uint8_t msg[16 + ADDR_LEN + 16];

/* the last packet received */
static struct hdr rh;
static uint8_t rdata[RX_PAYLOAD];

static void check(const char *name, int ok, const char *why, int64_t v) {
    checks++;
    if (ok) printf_lite("CHECK %s ok\n", name);
    else { printf_lite("CHECK %s FAIL %s %ld\n", name, why ? why : "", v); failures++; }
}

static void info_rx(const char *what) {
    int32_t r = 0;
    if (rh.len >= 4) memcpy(&r, rdata, 4);
    printf_lite("INFO %s: op %u type %u %lu:%u -> %lu:%u len %u flags %u (first word %d)\n", what, rh.op, rh.type,
                rh.src_cid, rh.src_port, rh.dst_cid, rh.dst_port, rh.len, rh.flags, r);
}

/* ---- the queues ---------------------------------------------------------------------------------------------- */

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
    const char *bad = 0;
    if (e.len < HDR) bad = "rx packet shorter than its header";
    else {
        memcpy(&rh, rxbuf[i], HDR);
        if (rh.len > RX_PAYLOAD || rh.len > e.len - HDR) bad = "rx len beyond the bytes written";
        else memcpy(rdata, rxbuf[i] + HDR, rh.len);
    }
    rx_post(i);
    virtio_notify(&dev, 0);
    return bad;
}

/* The next packet, skipping a stream's credit traffic (the device may report or ask for credit at any time). */
static const char *rx_next(uint64_t ms) {
    for (;;) {
        const char *err = rx_wait(ms);
        if (err) return err;
        if (rh.type == TYPE_STREAM && (rh.op == OP_CREDIT_UPDATE || rh.op == OP_CREDIT_REQUEST)) continue;
        return 0;
    }
}

/* Sends one chain of raw pieces on tx and waits until the device has used it (counted in tx_lost if not). */
static void tx_raw(const struct vbuf *b, int n) {
    int head = virtio_add(&dev, 1, b, n);
    if (head < 0) { tx_lost++; return; }
    virtio_notify(&dev, 1);
    struct vring_used_elem e;
    const char *err = virtio_wait_used(&dev, 1, &e, timeout_ms);
    if (err) { printf_lite("INFO tx chain not back: %s\n", err); tx_lost++; }
}

static struct hdr dgram_hdr(uint32_t src, uint32_t dst, uint32_t len) {
    struct hdr h = { GUEST_CID, HOST_CID, src, dst, len, TYPE_DGRAM, OP_RW, 0, 0, 0 };
    return h;
}

static struct hdr stream_hdr(uint32_t src, uint32_t dst, uint16_t op, uint32_t len, uint32_t fwd) {
    struct hdr h = { GUEST_CID, HOST_CID, src, dst, len, TYPE_STREAM, op, 0, CREDIT, fwd };
    return h;
}

/* header and payload in one descriptor, as Linux sends small packets */
static void send(struct hdr h, const void *data, uint32_t n) {
    memcpy(txbuf, &h, HDR);
    if (n) memcpy(txbuf + HDR, data, n);
    struct vbuf b = { txbuf, HDR + n, 0 };
    tx_raw(&b, 1);
}

static void dgram(uint32_t src, uint32_t dst, const void *data, uint32_t n) { send(dgram_hdr(src, dst, n), data, n); }

/* ---- the control messages (packed little-endian structs, as libkrunfw's af_tsi.h) ------------------------------ */

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

static void sa_in(struct sa *s, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
    memset(s, 0, sizeof *s);
    put16(s->b, FAM_INET);
    s->b[2] = (uint8_t)(port >> 8); s->b[3] = (uint8_t)port;
    s->b[4] = a; s->b[5] = b; s->b[6] = c; s->b[7] = d;
    s->len = 16;
}

static void sa_in6_loopback(struct sa *s, uint16_t port) {
    memset(s, 0, sizeof *s);
    put16(s->b, FAM_INET6);
    s->b[2] = (uint8_t)(port >> 8); s->b[3] = (uint8_t)port;
    s->b[23] = 1;
    s->len = 28;
}

static void sa_unix(struct sa *s, const char *path) {
    memset(s, 0, sizeof *s);
    put16(s->b, FAM_UNIX);
    size_t n = strlen(path);
    memcpy(s->b + 2, path, n);
    s->len = (uint32_t)(2 + n + 1);
}

static void create(uint32_t svm, uint16_t family, uint16_t type) {
    put32(msg, svm); put16(msg + 4, family); put16(msg + 6, type);
    dgram(CTL, PROXY_CREATE, msg, 8);
}

/* TSI_CONNECT / TSI_SENDTO_ADDR: svm_port, addr_len, addr[128]; `size` bytes of it sent */
static uint32_t addressed(uint32_t svm, const struct sa *s, uint32_t addr_len) {
    memset(msg, 0, sizeof msg);
    put32(msg, svm); put32(msg + 4, addr_len);
    memcpy(msg + 8, s->b, ADDR_LEN);
    return 8 + ADDR_LEN;
}

static void connect_sized(uint32_t svm, const struct sa *s, uint32_t addr_len, uint32_t size) {
    addressed(svm, s, addr_len);
    dgram(CTL, CONNECT, msg, size);
}

static void connect(uint32_t svm, const struct sa *s) { connect_sized(svm, s, s->len, 8 + ADDR_LEN); }

static void sendto_addr(uint32_t svm, const struct sa *s) {
    addressed(svm, s, s->len);
    dgram(CTL, SENDTO_ADDR, msg, 8 + ADDR_LEN);
}

/* TSI_LISTEN: svm_port, vm_port, backlog, addr_len, addr[128] */
static void listen_sized(uint32_t svm, uint32_t vm_port, const struct sa *s, uint32_t addr_len, uint32_t size) {
    memset(msg, 0, sizeof msg);
    put32(msg, svm); put32(msg + 4, vm_port); put32(msg + 8, 16); put32(msg + 12, addr_len);
    memcpy(msg + 16, s->b, ADDR_LEN);
    dgram(CTL, LISTEN, msg, size);
}

static void listen(uint32_t svm, uint32_t vm_port, const struct sa *s) {
    listen_sized(svm, vm_port, s, s->len, 16 + ADDR_LEN);
}

static void getname_from(uint32_t ctl, uint32_t svm, uint32_t peer_port, uint32_t peer) {
    put32(msg, svm); put32(msg + 4, peer_port); put32(msg + 8, peer);
    dgram(ctl, GETNAME, msg, 12);
}

static void accept(uint32_t svm, uint32_t flags) {
    put32(msg, svm); put32(msg + 4, flags);
    dgram(CTL, ACCEPT, msg, 8);
}

static void release(uint32_t svm, uint32_t peer_port) {
    put32(msg, svm); put32(msg + 4, peer_port);
    dgram(CTL, PROXY_RELEASE, msg, 8);
}

/* Whether rh is the control reply from `type` to `ctl`, whole; its result in *r. */
static int is_reply(uint32_t type, uint32_t ctl, int32_t *r) {
    uint32_t want = type == GETNAME ? GETNAME_RSP : 4;
    if (rh.type != TYPE_DGRAM || rh.op != OP_RW || rh.src_cid != HOST_CID || rh.dst_cid != GUEST_CID
        || rh.src_port != type || rh.dst_port != ctl || rh.len != want) return 0;
    memcpy(r, rdata, 4);
    return 1;
}

/* The next packet must be the reply from `type` to CTL: 0 and its result in *r, else why not. */
static const char *reply(uint32_t type, int32_t *r) {
    const char *err = rx_next(timeout_ms);
    if (err) return err;
    if (!is_reply(type, CTL, r)) { info_rx("expected a control reply"); return "not the control reply"; }
    return 0;
}

static void expect(const char *name, uint32_t type, int32_t want) {
    int32_t r = 0;
    const char *err = reply(type, &r);
    if (!err && r != want) err = "result";
    check(name, !err, err, r);
}

/* Nothing but what was checked arrived since: a GETNAME of no proxy from another control port is the next packet.
 * Whatever came before it is shown and skipped, so that later checks start in step. */
static void quiet(const char *name) {
    getname_from(SENTINEL_CTL, NO_PROXY, TSI_PORT, 1);
    int extra = 0;
    int32_t r = 0;
    const char *err;
    for (;;) {
        err = rx_next(timeout_ms);
        if (err || is_reply(GETNAME, SENTINEL_CTL, &r)) break;
        info_rx("unexpected packet");
        extra++;
    }
    if (!err && r != -EINVAL) err = "sentinel result";
    check(name, !err && !extra, err ? err : "packets that should not have come", err ? r : extra);
}

static void chains_back(const char *name) {
    check(name, tx_lost == 0, "tx chains not returned", tx_lost);
    tx_lost = 0;
}

/* A stream REQUEST from src to dst must be answered by RST from dst. */
static void expect_rst(const char *name, uint32_t src, uint32_t dst) {
    send(stream_hdr(src, dst, OP_REQUEST, 0, 0), 0, 0);
    const char *err = rx_next(timeout_ms);
    int ok = !err && rh.type == TYPE_STREAM && rh.op == OP_RST && rh.src_port == dst && rh.dst_port == src;
    if (!err && !ok) info_rx("expected RST");
    check(name, ok, err ? err : "not RST", rh.op);
}

/* ---- the legitimate flow ----------------------------------------------------------------------------------- */

static int64_t why_v;

static const char *legit_stream(uint32_t svm) {
    struct sa s;
    int32_t r = 0;
    const char *err;
    sa_in(&s, 127, 0, 0, 1, (uint16_t)echo_port);
    create(svm, FAM_INET, T_STREAM);
    connect(svm, &s);
    if ((err = reply(CONNECT, &r))) return err;
    if (r) { why_v = r; return "CONNECT result"; }
    getname_from(CTL, svm, TSI_PORT, 1);
    if ((err = reply(GETNAME, &r))) return err;
    uint32_t alen;
    memcpy(&alen, rdata + 4, 4);
    if (r || alen != 16 || memcmp(rdata + 8, s.b, 16)) { why_v = r ? r : alen; return "GETNAME peer"; }
    send(stream_hdr(svm, TSI_PORT, OP_REQUEST, 0, 0), 0, 0);
    if ((err = rx_next(timeout_ms))) return err;
    if (rh.type != TYPE_STREAM || rh.op != OP_RESPONSE || rh.src_port != TSI_PORT || rh.dst_port != svm) {
        info_rx("expected RESPONSE");
        return "REQUEST to 620 not answered by RESPONSE";
    }
    send(stream_hdr(svm, TSI_PORT, OP_RW, 9, 0), "hello tsi", 9);
    static char echo[16];
    uint32_t got = 0;
    while (got < 9) {
        if ((err = rx_next(timeout_ms))) return err;
        if (rh.type != TYPE_STREAM || rh.op != OP_RW || rh.dst_port != svm || rh.src_port != TSI_PORT
            || rh.len > 9 - got) {
            info_rx("expected the echo");
            return "not the echo";
        }
        memcpy(echo + got, rdata, rh.len);
        got += rh.len;
    }
    if (memcmp(echo, "hello tsi", 9)) return "the echo differs";
    send(stream_hdr(svm, TSI_PORT, OP_RST, 0, 9), 0, 0);     /* an RST is never answered */
    release(svm, TSI_PORT);
    return 0;
}

static const char *legit_dgram(uint32_t svm) {
    struct sa s;
    const char *err;
    sa_in(&s, 127, 0, 0, 1, (uint16_t)udp_port);
    create(svm, FAM_INET, T_DGRAM);
    sendto_addr(svm, &s);
    dgram(svm, SENDTO_DATA, "hello udp", 9);
    if ((err = rx_next(timeout_ms))) return err;
    if (rh.type != TYPE_DGRAM || rh.op != OP_RW || rh.src_cid != HOST_CID || rh.dst_port != svm || rh.len != 9
        || memcmp(rdata, "hello udp", 9)) {
        info_rx("expected the datagram echo");
        return "not the datagram echo";
    }
    release(svm, TSI_PORT);
    return 0;
}

static void legit(const char *stream_name, const char *dgram_name, uint32_t svm) {
    why_v = 0;
    const char *err = legit_stream(svm);
    check(stream_name, !err, err, why_v);
    err = legit_dgram(svm + 1);
    check(dgram_name, !err, err, 0);
}

/* ---- malformed messages ------------------------------------------------------------------------------------ */

static void malformed(void) {
    const uint32_t A = 60001;                      /* a live AF_INET stream proxy the messages name */
    struct sa denied, s;
    sa_in(&denied, 203, 0, 113, 7, 80);
    create(A, FAM_INET, T_STREAM);

    dgram(CTL, CONNECT, "\x01\x02", 2);
    expect("malformed: CONNECT of 2 bytes gets -EINVAL", CONNECT, -EINVAL);
    connect_sized(A, &denied, 16, 6);
    expect("malformed: CONNECT of 6 bytes naming a proxy gets -EINVAL", CONNECT, -EINVAL);
    connect_sized(A, &denied, 129, 8 + ADDR_LEN);
    expect("malformed: CONNECT with addr_len 129 gets -EINVAL", CONNECT, -EINVAL);
    connect_sized(A, &denied, 0xffffffffu, 8 + ADDR_LEN);
    expect("malformed: CONNECT with addr_len 2^32-1 gets -EINVAL", CONNECT, -EINVAL);
    connect_sized(A, &denied, 16, 12);
    expect("malformed: CONNECT with addr_len beyond the payload gets -EINVAL", CONNECT, -EINVAL);
    connect_sized(A, &denied, 4, 8 + ADDR_LEN);
    expect("malformed: CONNECT of AF_INET with addr_len 4 gets -EINVAL", CONNECT, -EINVAL);
    connect_sized(A, &denied, 1, 8 + ADDR_LEN);
    expect("malformed: CONNECT with addr_len 1 (no family) gets -EINVAL", CONNECT, -EINVAL);
    s = denied; put16(s.b, 99);
    connect(A, &s);
    expect("malformed: CONNECT of unknown family 99 gets -EAFNOSUPPORT", CONNECT, -EAFNOSUPPORT);
    s = denied; put16(s.b, 0xffff);
    connect(A, &s);
    expect("malformed: CONNECT of family 0xffff gets -EAFNOSUPPORT", CONNECT, -EAFNOSUPPORT);
    sa_in6_loopback(&s, (uint16_t)echo_port);
    connect(A, &s);
    expect("malformed: CONNECT of AF_INET6 on an AF_INET proxy gets -EINVAL", CONNECT, -EINVAL);
    dgram(CTL, GETNAME, "\x01\x02\x03", 3);
    expect("malformed: GETNAME of 3 bytes gets -EINVAL", GETNAME, -EINVAL);
    dgram(CTL, LISTEN, "\x01\x02\x03", 3);
    expect("malformed: LISTEN of 3 bytes gets -EINVAL", LISTEN, -EINVAL);
    sa_in(&s, 0, 0, 0, 0, PUBLISHED);
    listen_sized(A, 7000, &s, 16, 12);
    expect("malformed: LISTEN of 12 bytes naming a proxy gets -EINVAL", LISTEN, -EINVAL);
    listen_sized(A, 7000, &s, 200, 16 + ADDR_LEN);
    expect("malformed: LISTEN with addr_len 200 gets -EINVAL", LISTEN, -EINVAL);
    dgram(CTL, ACCEPT, "\x01", 1);
    expect("malformed: ACCEPT of 1 byte gets -EINVAL", ACCEPT, -EINVAL);

    /* a header whose len cuts the CONNECT short: the bytes beyond len are not the message's */
    uint32_t n = addressed(A, &denied, 16);
    struct hdr h = dgram_hdr(CTL, CONNECT, 4);
    memcpy(txbuf, &h, HDR); memcpy(txbuf + HDR, msg, n);
    struct vbuf cut = { txbuf, HDR + n, 0 };
    tx_raw(&cut, 1);
    expect("malformed: a CONNECT whose len stops after svm_port gets -EINVAL", CONNECT, -EINVAL);

    /* layouts a driver may choose: header and payload over three descriptors; the largest payload */
    h = dgram_hdr(CTL, CONNECT, n);
    memcpy(txbuf, &h, HDR); memcpy(txbuf + HDR, msg, n);
    struct vbuf split[3] = { { txbuf, 20, 0 }, { txbuf + 20, HDR - 20 + 6, 0 }, { txbuf + HDR + 6, n - 6, 0 } };
    tx_raw(split, 3);
    expect("layout: a CONNECT split over three descriptors is answered (-EPERM: denied)", CONNECT, -EPERM);
    memset(txbuf + HDR, 0x5a, BIG);
    h = dgram_hdr(CTL, CONNECT, BIG);
    memcpy(txbuf, &h, HDR); memcpy(txbuf + HDR, msg, n);
    struct vbuf big = { txbuf, HDR + BIG, 0 };
    tx_raw(&big, 1);
    expect("layout: a CONNECT of 64 KiB is answered (-EPERM: denied)", CONNECT, -EPERM);

    /* messages that have no reply, malformed or refused: nothing may come back */
    dgram(CTL, PROXY_CREATE, "\x01\x02\x03\x04\x05\x06\x07", 7);
    dgram(CTL, PROXY_CREATE, "", 0);
    dgram(CTL, PROXY_RELEASE, "\x01", 1);
    dgram(CTL, SENDTO_ADDR, "", 0);
    dgram(CTL, SENDTO_DATA, "0123456789", 10);
    create(60002, FAM_INET, 9);                    /* unknown socket type */
    create(60003, 77, T_STREAM);                   /* unknown family */
    create(60004, 0xffff, T_DGRAM);
    addressed(A, &denied, 16);
    dgram(CTL, SENDTO_ADDR, msg, 8 + ADDR_LEN);    /* SENDTO_ADDR naming a stream proxy */
    quiet("malformed: messages without a reply (short, unknown family or type) get none");

    /* unknown message types; the connected-datagram port of no proxy */
    addressed(A, &denied, 16);
    dgram(CTL, 1023, msg, 8 + ADDR_LEN);
    dgram(CTL, 1032, msg, 8 + ADDR_LEN);
    dgram(CTL, 1100, msg, 8 + ADDR_LEN);
    dgram(CTL, 0xffffffffu, msg, 8 + ADDR_LEN);
    dgram(CTL, TSI_PORT, msg, 8 + ADDR_LEN);
    dgram(CTL, 0, msg, 8 + ADDR_LEN);
    dgram(CTL, CTL, msg, 8 + ADDR_LEN);
    quiet("malformed: unknown message types (1023, 1032, 1100, 2^32-1, 620, 0, src==dst) are dropped");

    /* a well-formed CONNECT that would be answered -EPERM, with an op other than RW */
    static const uint16_t ops[] = { 0, OP_REQUEST, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_CREDIT_UPDATE,
                                    OP_CREDIT_REQUEST, 8, 99, 0xffff };
    for (unsigned i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        addressed(A, &denied, 16);
        h = dgram_hdr(CTL, CONNECT, n); h.op = ops[i];
        send(h, msg, n);
    }
    quiet("malformed: DGRAMs with an op other than RW are dropped");

    /* the same CONNECT from or to the wrong CIDs */
    static const uint64_t cids[][2] = { { 77, HOST_CID }, { HOST_CID, HOST_CID }, { GUEST_CID, GUEST_CID },
                                        { GUEST_CID, 1 }, { GUEST_CID, 0xffffffffffffffffULL },
                                        { GUEST_CID, HOST_CID | 1ULL << 32 }, { GUEST_CID | 1ULL << 32, HOST_CID } };
    for (unsigned i = 0; i < sizeof cids / sizeof cids[0]; i++) {
        addressed(A, &denied, 16);
        h = dgram_hdr(CTL, CONNECT, n); h.src_cid = cids[i][0]; h.dst_cid = cids[i][1];
        send(h, msg, n);
    }
    quiet("malformed: DGRAMs from or to foreign CIDs are dropped");

    /* headers that lie about their length, or cannot be read */
    addressed(A, &denied, 16);
    h = dgram_hdr(CTL, CONNECT, 64);
    memcpy(txbuf, &h, HDR); memcpy(txbuf + HDR, msg, 20);
    struct vbuf b1 = { txbuf, HDR + 20, 0 };
    tx_raw(&b1, 1);                                /* len 64, 20 bytes in the chain */
    h = dgram_hdr(CTL, CONNECT, BIG + 1);
    memcpy(txbuf, &h, HDR);
    struct vbuf b2 = { txbuf, HDR, 0 };
    tx_raw(&b2, 1);                                /* len 64 KiB + 1 */
    h = dgram_hdr(CTL, CONNECT, 0xffffffffu);
    memcpy(txbuf, &h, HDR);
    tx_raw(&b2, 1);                                /* len 2^32-1 */
    h = dgram_hdr(CTL, GETNAME, 12);
    memcpy(txbuf, &h, HDR);
    struct vbuf b3[2] = { { txbuf, HDR, 0 }, { txbuf + HDR, 12, 1 } };
    tx_raw(b3, 2);                                 /* the payload in a device-writable descriptor */
    struct vbuf b4 = { txbuf, 10, 0 };
    tx_raw(&b4, 1);                                /* shorter than a header */
    struct vbuf b5 = { txbuf, HDR, 1 };
    tx_raw(&b5, 1);                                /* the header device-writable */
    quiet("malformed: DGRAMs whose len lies or whose header is unreadable are dropped");

    /* a stream REQUEST to a control port: an ordinary unbound port, RST */
    expect_rst("malformed: a stream REQUEST to a control port gets RST", 4000, CONNECT);

    release(A, TSI_PORT);
    quiet("malformed: nothing else arrives");
    chains_back("malformed: every tx chain comes back");
}

/* ---- state abuse and policy -------------------------------------------------------------------------------- */

static void state(void) {
    struct sa echo, s;
    sa_in(&echo, 127, 0, 0, 1, (uint16_t)echo_port);
    const uint32_t ghost = 60100, I = 60101, B = 60102, C = 60103, D = 60104, U = 60105, L = 60106, L2 = 60107;

    connect(ghost, &echo);
    expect("state: CONNECT on a proxy never created gets -ECONNREFUSED", CONNECT, -ECONNREFUSED);
    sa_in(&s, 0, 0, 0, 0, PUBLISHED);
    listen(ghost, 7000, &s);
    expect("state: LISTEN on a proxy never created gets -EPERM", LISTEN, -EPERM);
    accept(ghost, 0);
    expect("state: ACCEPT on a proxy never created gets -EINVAL", ACCEPT, -EINVAL);
    getname_from(CTL, ghost, TSI_PORT, 1);
    expect("state: GETNAME of a proxy never created gets -EINVAL", GETNAME, -EINVAL);
    expect_rst("state: REQUEST to 620 from no proxy gets RST", ghost, TSI_PORT);

    create(I, FAM_INET, T_STREAM);
    getname_from(CTL, I, TSI_PORT, 1);
    expect("state: GETNAME peer of an idle proxy gets -ENOTCONN", GETNAME, -ENOTCONN);
    getname_from(CTL, I, TSI_PORT, 0);
    expect("state: GETNAME local of an idle proxy gets -EOPNOTSUPP", GETNAME, -EOPNOTSUPP);
    accept(I, NONBLOCK);
    expect("state: ACCEPT on a proxy that is not listening gets -EINVAL", ACCEPT, -EINVAL);
    expect_rst("state: REQUEST to 620 from an unconnected proxy gets RST", I, TSI_PORT);

    /* a second PROXY_CREATE over a connected proxy replaces it: its connection is gone */
    create(B, FAM_INET, T_STREAM);
    connect(B, &echo);
    expect("state: CONNECT to the echo server answers 0", CONNECT, 0);
    create(B, FAM_INET, T_STREAM);
    expect_rst("state: a second PROXY_CREATE replaces a connected proxy (its REQUEST gets RST)", B, TSI_PORT);
    connect(B, &echo);
    expect("state: the replacing proxy connects anew", CONNECT, 0);

    create(C, FAM_INET, T_STREAM);
    connect(C, &echo);
    expect("state: CONNECT answers 0", CONNECT, 0);
    connect(C, &echo);
    expect("state: CONNECT on a connected proxy gets -EISCONN", CONNECT, -EISCONN);

    /* a CONNECT still in progress (the stall server's accept queue is full: the SYN goes unanswered) */
    if (stall_port) {
        const uint32_t S = 60108;
        sa_in(&s, 127, 0, 0, 1, (uint16_t)stall_port);
        create(S, FAM_INET, T_STREAM);
        connect(S, &s);                            /* answered when the connect completes: not before RELEASE */
        connect(S, &s);
        expect("connecting: CONNECT again gets -EALREADY", CONNECT, -EALREADY);
        getname_from(CTL, S, TSI_PORT, 1);
        expect("connecting: GETNAME peer gets -ENOTCONN", GETNAME, -ENOTCONN);
        expect_rst("connecting: REQUEST to 620 gets RST", S, TSI_PORT);
        release(S, TSI_PORT);
        quiet("connecting: RELEASE of a connecting proxy: its CONNECT is never answered");
    }

    release(ghost, TSI_PORT);
    release(12345, 0);
    release(0xffffffffu, 0xffffffffu);
    release(B, TSI_PORT);
    release(B, TSI_PORT);
    release(C, 0);                                 /* the wrong peer port: C stays */
    release(C, TSI_PORT);
    release(I, TSI_PORT);
    quiet("state: RELEASE of unknown proxies, twice, with a wrong peer port gets no answer");

    /* the outbound policy: refused before any socket exists */
    create(I, FAM_INET, T_STREAM);
    sa_in(&s, 203, 0, 113, 7, 80);
    connect(I, &s);
    expect("policy: CONNECT to 203.0.113.7:80 gets -EPERM", CONNECT, -EPERM);
    sa_in(&s, 192, 0, 2, 1, 443);
    connect(I, &s);
    expect("policy: CONNECT to 192.0.2.1:443 gets -EPERM", CONNECT, -EPERM);
    sa_in(&s, 127, 0, 0, 1, (uint16_t)denied_port);
    connect(I, &s);
    expect("policy: CONNECT to 127.0.0.1 on a port the policy denies gets -EPERM", CONNECT, -EPERM);
    create(D, FAM_INET, T_DGRAM);
    sa_in(&s, 192, 0, 2, 1, 53);
    connect(D, &s);
    expect("policy: datagram CONNECT to 192.0.2.1:53 gets -EPERM", CONNECT, -EPERM);
    sendto_addr(D, &s);
    dgram(D, SENDTO_DATA, "query", 5);
    dgram(D, D, "query", 5);                       /* as if connected */
    sa_in(&s, 127, 0, 0, 1, (uint16_t)denied_port);
    sendto_addr(D, &s);
    dgram(D, SENDTO_DATA, "query", 5);
    quiet("policy: datagrams to denied destinations are dropped without an answer");
    sa_in(&s, 0, 0, 0, 0, PUBLISHED);
    listen(D, 7000, &s);
    expect("state: LISTEN on a datagram proxy gets -EOPNOTSUPP", LISTEN, -EOPNOTSUPP);

    /* the unix scope is off: no AF_UNIX proxy exists */
    create(U, FAM_UNIX, T_STREAM);
    sa_unix(&s, "/tmp/jkrun-tsi-none");
    connect(U, &s);
    expect("scope: AF_UNIX is not proxied with the unix scope off (CONNECT -ECONNREFUSED)", CONNECT, -ECONNREFUSED);
    listen(U, 7000, &s);
    expect("scope: LISTEN on AF_UNIX with the unix scope off gets -EPERM", LISTEN, -EPERM);

    /* the port map */
    sa_in(&s, 0, 0, 0, 0, 9090);
    listen(I, 7000, &s);
    expect("listen: LISTEN on an unpublished port gets -EPERM", LISTEN, -EPERM);
    sa_in(&s, 127, 0, 0, 1, PUBLISHED);
    listen(I, 7000, &s);
    expect("listen: LISTEN on 127.0.0.1 gets -EADDRNOTAVAIL", LISTEN, -EADDRNOTAVAIL);
    sa_in(&s, 0, 0, 0, 0, 0);
    listen(I, 7000, &s);
    expect("listen: LISTEN on port 0 gets -EPERM (ephemeral ports not exposed)", LISTEN, -EPERM);

    create(L, FAM_INET, T_STREAM);
    sa_in(&s, 0, 0, 0, 0, PUBLISHED);
    listen(L, 7000, &s);
    expect("listen: LISTEN on the published port answers 0", LISTEN, 0);
    listen(L, 7000, &s);
    expect("listen: LISTEN again on the listening proxy answers 0", LISTEN, 0);
    connect(L, &echo);
    expect("listen: CONNECT on a listening proxy gets -EINVAL", CONNECT, -EINVAL);
    accept(L, NONBLOCK);
    expect("listen: ACCEPT with O_NONBLOCK and no client gets -EAGAIN", ACCEPT, -EAGAIN);
    getname_from(CTL, L, TSI_PORT, 0);
    int32_t r = 0;
    uint32_t alen = 0;
    const char *err = reply(GETNAME, &r);
    struct sa want;
    sa_in(&want, 127, 0, 0, 1, (uint16_t)host_port);
    if (!err) memcpy(&alen, rdata + 4, 4);
    if (!err && (r || alen != 16 || memcmp(rdata + 8, want.b, 16))) err = "name";
    check("listen: GETNAME local reports 127.0.0.1:<host port>", !err, err, r ? r : alen);
    create(L2, FAM_INET, T_STREAM);
    listen(L2, 7001, &s);
    expect("listen: a second listener on the published port gets -EADDRINUSE", LISTEN, -EADDRINUSE);
    accept(L, 0);                                  /* blocking: answered by a client only */
    release(L, TSI_PORT);
    release(L2, TSI_PORT);
    release(I, TSI_PORT);
    release(D, TSI_PORT);
    quiet("state: a blocking ACCEPT released before any client gets no answer; nothing else arrives");
    chains_back("state: every tx chain comes back");
}

/* ---- caps ---------------------------------------------------------------------------------------------------- */

/* creates n stream proxies from svm and CONNECTs each to the echo server: how many answered 0 before the first
 * -EMFILE, and whether all the rest got -EMFILE (*bad counts other answers) */
static uint32_t connect_all(uint32_t svm, uint32_t n, int *bad) {
    struct sa echo;
    sa_in(&echo, 127, 0, 0, 1, (uint16_t)echo_port);
    uint32_t zero = 0;
    for (uint32_t i = 0; i < n; i++) {
        create(svm + i, FAM_INET, T_STREAM);
        connect(svm + i, &echo);
        int32_t r = 0;
        const char *err = reply(CONNECT, &r);
        if (err) { (*bad)++; continue; }
        if (r == 0 && zero == i) zero++;
        else if (r != -EMFILE) { printf_lite("INFO CONNECT %u of %u: %d\n", i, n, r); (*bad)++; }
    }
    return zero;
}

static void caps(void) {
    const uint32_t P = 61000, Q = 61100, R = 61200;
    int bad = 0;
    uint32_t zero = connect_all(P, max_proxies, &bad);
    check("caps: CONNECTs past the host-socket cap get -EMFILE", zero == max_fds && !bad, "answered 0",
          bad ? -bad : zero);

    struct sa s;
    for (uint32_t i = 0; i < 4; i++) create(R + i, FAM_INET, T_STREAM);
    sa_in(&s, 127, 0, 0, 1, (uint16_t)echo_port);
    connect(R, &s);
    expect("caps: CONNECT on a PROXY_CREATE past the proxy cap gets -ENOBUFS", CONNECT, -ENOBUFS);
    sa_in(&s, 0, 0, 0, 0, PUBLISHED);
    listen(R + 1, 7000, &s);
    expect("caps: LISTEN on a PROXY_CREATE past the proxy cap gets -ENOBUFS", LISTEN, -ENOBUFS);
    for (uint32_t i = 0; i < 500; i++) create(R + 100 + i, i & 1 ? FAM_INET : FAM_INET6, i & 2 ? T_STREAM : T_DGRAM);
    quiet("caps: 500 more PROXY_CREATEs past the cap get no answer");

    for (uint32_t i = 0; i < max_proxies; i++) release(P + i, TSI_PORT);
    quiet("caps: RELEASE of every proxy gets no answer");
    bad = 0;
    zero = connect_all(Q, max_proxies, &bad);
    check("caps: after RELEASE every proxy and host socket is free again", zero == max_fds && !bad, "answered 0",
          bad ? -bad : zero);
    for (uint32_t i = 0; i < max_proxies; i++) release(Q + i, TSI_PORT);
    create(R, FAM_INET, T_STREAM);
    sa_in(&s, 127, 0, 0, 1, (uint16_t)echo_port);
    connect(R, &s);
    expect("caps: a port refused at the cap gets a proxy once there is room", CONNECT, 0);
    release(R, TSI_PORT);
    quiet("caps: nothing else arrives");
    chains_back("caps: every tx chain comes back");
}

/* ---- the reply backlog --------------------------------------------------------------------------------------- */

static void flood(void) {
    struct vq *t = &dev.vq[1], *r = &dev.vq[0];
    uint32_t sent = 0, done = 0, got = 0, bad = 0, paused_at = 0;
    int reading = 0, timed_out = 0;
    uint64_t idle = lapic_ticks;
    while (got < FLOOD_N) {
        int progress = 0;
        while (sent < FLOOD_N && t->num_free > 0) {
            uint8_t *b = flood_tx[t->free_head];   /* the descriptor virtio_add takes: a single-descriptor chain */
            struct hdr h = dgram_hdr(FLOOD_CTL + sent, GETNAME, 12);
            memcpy(b, &h, HDR);
            put32(b + HDR, NO_PROXY); put32(b + HDR + 4, TSI_PORT); put32(b + HDR + 8, 1);
            struct vbuf v = { b, HDR + 12, 0 };
            if (virtio_add(&dev, 1, &v, 1) < 0) break;
            sent++;
            progress = 1;
        }
        if (progress) virtio_notify(&dev, 1);
        struct vring_used_elem e;
        while (t->used->idx != t->last_used) {
            if (virtio_wait_used(&dev, 1, &e, 0)) break;
            done++;
            progress = 1;
        }
        while (reading && r->used->idx != r->last_used) {
            const char *err = rx_wait(0);
            int32_t res = 0;
            if (err || !is_reply(GETNAME, FLOOD_CTL + got, &res) || res != -EINVAL) {
                if (!err && bad < 3) info_rx("flood");
                bad++;
            }
            got++;
            progress = 1;
        }
        if (progress) { idle = lapic_ticks; continue; }
        if (!reading && lapic_ticks - idle > 100) {        /* 1 s without progress: the device waits for rx */
            paused_at = done;
            reading = 1;
            idle = lapic_ticks;
            continue;
        }
        if (reading && lapic_ticks - idle > timeout_ms / 10) { timed_out = 1; break; }
        sti_hlt();                                         /* an interrupt or the 10 ms watchdog tick */
    }
    /* The device writes a request's reply before it gives the request's tx chain back: the last chains can still be
     * on their way when the last reply has been read. */
    for (uint64_t drain = lapic_ticks; !timed_out && done < sent && lapic_ticks - drain <= timeout_ms / 10;) {
        struct vring_used_elem e;
        if (t->used->idx == t->last_used) { sti_hlt(); continue; }
        if (virtio_wait_used(&dev, 1, &e, 0)) break;
        done++;
    }
    printf_lite("INFO flood: the device took %u of %u requests before waiting for rx buffers\n", paused_at, FLOOD_N);
    check("flood: the device stops taking tx while backlog replies wait",
          paused_at >= backlog && paused_at <= backlog + RX_BUFS, "took", paused_at);
    check("flood: every request is answered once, in order", !timed_out && got == FLOOD_N && !bad && done == FLOOD_N,
          timed_out ? "timed out, got" : "bad", timed_out ? got : bad);
    quiet("flood: nothing else arrives");
    chains_back("flood: every tx chain comes back");
}

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    paging_init();
    idt_init();
    timeout_ms = cmdline_u64("jkrun.test.timeout_ms=", 10000);
    echo_port = (uint32_t)cmdline_u64("jkrun.tsi.echo_port=", 0);
    udp_port = (uint32_t)cmdline_u64("jkrun.tsi.udp_port=", 0);
    stall_port = (uint32_t)cmdline_u64("jkrun.tsi.stall_port=", 0);
    denied_port = (uint32_t)cmdline_u64("jkrun.tsi.denied_port=", 1);
    host_port = (uint32_t)cmdline_u64("jkrun.tsi.host_port=", 0);
    max_proxies = (uint32_t)cmdline_u64("jkrun.tsi.max_proxies=", 8);
    max_fds = (uint32_t)cmdline_u64("jkrun.tsi.max_fds=", 6);
    backlog = (uint32_t)cmdline_u64("jkrun.tsi.backlog=", 16);
    if (!echo_port || !udp_port || !host_port) fail("jkrun.tsi.echo_port, udp_port and host_port are required");
    uintptr_t base = 0; int irq = -1, found = 0;
    for (int k = 0; !found && !virtio_find(k, &base, &irq); k++) found = readl(base + 0x08) == 19;
    if (!found) fail("no virtio-vsock device announced");
    const char *err = virtio_init(&dev, base, irq, 19, F_DGRAM);
    for (int q = 0; !err && q < 3; q++) err = virtio_setup_queue(&dev, q);
    if (!err) err = virtio_driver_ok(&dev);
    if (err) fail(err);
    virtio_enable_irq(&dev);
    check("features: VIRTIO_VSOCK_F_DGRAM is offered and negotiated", (dev.driver_features & F_DGRAM) != 0,
          "features", (int64_t)dev.device_features);
    uint64_t cid = readl(base + 0x100) | (uint64_t)readl(base + 0x104) << 32;
    check("config: guest_cid is 3", cid == GUEST_CID, "cid", (int64_t)cid);
    for (int i = 0; i < RX_BUFS; i++) rx_post(i);
    virtio_notify(&dev, 0);

    legit("legit first: stream through a TSI proxy echoes", "legit first: datagram through a TSI proxy echoes", 62000);
    malformed();
    legit("legit after malformed: stream echoes", "legit after malformed: datagram echoes", 62010);
    state();
    legit("legit after state abuse: stream echoes", "legit after state abuse: datagram echoes", 62020);
    caps();
    legit("legit after caps: stream echoes", "legit after caps: datagram echoes", 62030);
    flood();
    legit("legit after flood: stream echoes", "legit after flood: datagram echoes", 62040);
    quiet("end: nothing else arrives");
    chains_back("end: every tx chain comes back");

    if (failures) { printf_lite("TSI FAIL %d\n", failures); return 1; }
    printf_lite("TSI ok %d\n", checks);
    return 0;
}
