/* net: a virtio-net (id 1) driver test guest (virtio 1.2 §5.1) talking to a host peer through a socket backend.
 * Finds the first virtio_mmio.device= announcing id 1, checks two queues and the MAC in config space, negotiates
 * MAC only (no offloads: every frame's 12-byte virtio_net_hdr_v1 is zero), and runs, in order:
 *   hello      a 60-byte frame out (header and frame in two descriptors); the host checks it byte for byte
 *   exhaust    no receive buffer is posted for 500 ms while the host sends BURST frames; then RX_BUFS buffers at a
 *              time: every frame arrives, in order, byte for byte, with a zero header and num_buffers 1
 *   malformed  tx chains of 8 bytes (shorter than the header), of 70012 bytes (over the largest frame) and with only
 *              a device-writable buffer come back used and unsent (the host's next frame is the big one); the
 *              device goes on
 *   big        a 1514-byte frame out, checked by the host, which answers with a 1514-byte frame the guest checks
 *   bye        a last frame; the host reports its own checks on stdout
 * Frames: dst, src MACs, EtherType 0x88B5 (local experimental), a 4-byte tag, a sequence byte, then pat(seq, k).
 * cmdline: jkrun.net.mac=<the MAC as a 48-bit number, 0x...> jkrun.test.timeout_ms=<ms> (20000) for each wait
 * Prints "CHECK <name> ok|FAIL <why> <value>" and "NET ok <checks>" or "NET FAIL <failures>"; exit 0 / 1. */
#include "guest.h"

#define DEVICE_NET 1
#define F_MAC 5
#define HDR 12
#define FRAME_MAX 1514
#define RX_BUFS 4
#define BURST 12
#define RXQ 0
#define TXQ 1

static struct virtio_dev dev;
static uint64_t timeout_ms;
static int failures, checks;
static uint8_t mac[6];
static const uint8_t host_mac[6] = {2, 0, 0, 0, 0, 1};

static uint8_t rxbuf[RX_BUFS][HDR + FRAME_MAX] __attribute__((aligned(64)));
static int rx_by_head[VQ_SIZE];
static uint8_t txhdr[HDR] __attribute__((aligned(16)));
static uint8_t txframe[FRAME_MAX] __attribute__((aligned(64)));

static void check(const char *name, int ok, const char *why, uint64_t v) {
    checks++;
    if (ok) printf_lite("CHECK %s ok\n", name);
    else { printf_lite("CHECK %s FAIL %s 0x%lx\n", name, why, v); failures++; }
}

static uint8_t pat(uint8_t seq, uint32_t k) { return (uint8_t)(seq * 31u + k * 7u + (k >> 8)); }

static void build(uint8_t *f, const uint8_t *dst, const uint8_t *src, const char *tag, uint8_t seq, uint32_t len) {
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    f[12] = 0x88; f[13] = 0xB5;
    memcpy(f + 14, tag, 4);
    f[18] = seq;
    for (uint32_t k = 19; k < len; k++) f[k] = pat(seq, k);
}

/* 0 when f (len bytes) is the frame build() makes for the host's tag and seq, else the first bad offset + 1. */
static uint32_t verify(const uint8_t *f, uint32_t len, const char *tag, uint8_t seq) {
    if (memcmp(f, mac, 6)) return 1;
    if (memcmp(f + 6, host_mac, 6)) return 7;
    if (f[12] != 0x88 || f[13] != 0xB5) return 13;
    if (memcmp(f + 14, tag, 4)) return 15;
    if (f[18] != seq) return 19;
    for (uint32_t k = 19; k < len; k++) if (f[k] != pat(seq, k)) return k + 1;
    return 0;
}

static void rx_post(int i) {
    memset(rxbuf[i], 0xA5, HDR);
    struct vbuf b = { rxbuf[i], sizeof rxbuf[i], 1 };
    int head = virtio_add(&dev, RXQ, &b, 1);
    if (head < 0) fail("rx queue full");
    rx_by_head[head] = i;
}

/* Sends a frame of len bytes (tag, seq) as header + frame and waits until the device used the chain. */
static const char *send(const char *tag, uint8_t seq, uint32_t len) {
    memset(txhdr, 0, HDR);
    build(txframe, host_mac, mac, tag, seq, len);
    struct vbuf b[2] = { { txhdr, HDR, 0 }, { txframe, len, 0 } };
    if (virtio_add(&dev, TXQ, b, 2) < 0) return "tx queue full";
    virtio_notify(&dev, TXQ);
    struct vring_used_elem e;
    return virtio_wait_used(&dev, TXQ, &e, timeout_ms);
}

/* Waits for the next received frame, checks it against (tag, seq, len); reposts its buffer unless hold. */
static void receive(const char *name, const char *tag, uint8_t seq, uint32_t len, int repost) {
    struct vring_used_elem e;
    const char *err = virtio_wait_used(&dev, RXQ, &e, timeout_ms);
    if (err) { check(name, 0, err, seq); return; }
    int i = rx_by_head[e.id % VQ_SIZE];
    if (e.len != HDR + len) { check(name, 0, "used length", e.len); if (repost) rx_post(i); return; }
    int hdr_ok = 1;
    for (int k = 0; k < HDR; k++) if (rxbuf[i][k] != (k == 10 ? 1 : 0)) hdr_ok = 0;
    if (!hdr_ok) { check(name, 0, "header is not zero with num_buffers 1", rxbuf[i][0]); if (repost) rx_post(i); return; }
    uint32_t bad = verify(rxbuf[i] + HDR, len, tag, seq);
    check(name, bad == 0, "frame differs at offset+1", bad);
    if (repost) rx_post(i);
}

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    paging_init();
    idt_init();
    timeout_ms = cmdline_u64("jkrun.test.timeout_ms=", 20000);
    uint64_t want = cmdline_u64("jkrun.net.mac=", 0);
    for (int k = 0; k < 6; k++) mac[k] = (uint8_t)(want >> (8 * (5 - k)));
    uintptr_t base = 0; int irq = -1, found = 0;
    for (int k = 0; !found && !virtio_find(k, &base, &irq); k++) found = readl(base + 0x08) == DEVICE_NET;
    if (!found) fail("no virtio-net device announced");
    const char *err = virtio_init(&dev, base, irq, DEVICE_NET, 1ULL << F_MAC);
    if (err) fail(err);
    check("offers MAC", (dev.device_features >> F_MAC) & 1, "features", dev.device_features);
    check("no mergeable rx buffers, status or control queue", !((dev.device_features >> 15) & 7), "features",
          dev.device_features);
    uint8_t cfg[6];
    for (int k = 0; k < 6; k++) cfg[k] = *(volatile uint8_t *)(base + 0x100 + k);
    check("config space holds the MAC", !memcmp(cfg, mac, 6), "first byte", cfg[0]);
    for (int q = 0; !err && q < 2; q++) err = virtio_setup_queue(&dev, q);
    if (!err) err = virtio_driver_ok(&dev);
    if (err) fail(err);
    virtio_enable_irq(&dev);

    err = send("HELO", 0, 60);
    check("hello: a 60-byte frame out", !err, err ? err : "", 0);

    /* exhaustion: the host sends BURST frames now; no buffer is posted for 500 ms */
    struct vring_used_elem e;
    err = virtio_wait_used(&dev, RXQ, &e, 500);
    check("exhaust: nothing arrives without buffers", err != 0, "a used rx buffer", e.id);
    for (int i = 0; i < RX_BUFS; i++) rx_post(i);
    virtio_notify(&dev, RXQ);
    for (int s = 0; s < BURST; s++) {
        char name[40] = "exhaust: frame ";
        name[15] = (char)('a' + s); name[16] = 0;
        receive(name, "BRST", (uint8_t)s, 60 + 100 * s, 1);
        virtio_notify(&dev, RXQ);
    }

    struct vbuf shortb = { txhdr, 8, 0 };
    if (virtio_add(&dev, TXQ, &shortb, 1) < 0) fail("tx queue full");
    virtio_notify(&dev, TXQ);
    err = virtio_wait_used(&dev, TXQ, &e, timeout_ms);
    check("malformed: an 8-byte tx chain comes back", !err && e.len == 0, err ? err : "used length", e.len);

    /* over the largest frame (12 + 70000 bytes, in memory outside the ELF): back unsent, the host sees nothing */
    struct vbuf huge[2] = { { txhdr, HDR, 0 }, { (void *)0x1000000UL, 70000, 0 } };
    if (virtio_add(&dev, TXQ, huge, 2) < 0) fail("tx queue full");
    virtio_notify(&dev, TXQ);
    err = virtio_wait_used(&dev, TXQ, &e, timeout_ms);
    check("malformed: a 70012-byte tx chain comes back unsent", !err && e.len == 0, err ? err : "used length", e.len);
    /* only a device-writable buffer: nothing to send */
    struct vbuf wonly = { txframe, 64, 1 };
    if (virtio_add(&dev, TXQ, &wonly, 1) < 0) fail("tx queue full");
    virtio_notify(&dev, TXQ);
    err = virtio_wait_used(&dev, TXQ, &e, timeout_ms);
    check("malformed: a write-only tx chain comes back unsent", !err && e.len == 0, err ? err : "used length", e.len);

    err = send("BIG!", 200, FRAME_MAX);
    check("big: a 1514-byte frame out", !err, err ? err : "", 0);
    receive("big: a 1514-byte frame in", "BIG!", 201, FRAME_MAX, 1);

    err = send("BYE!", 255, 64);
    check("bye", !err, err ? err : "", 0);

    if (failures) { printf_lite("NET FAIL %d\n", failures); return 1; }
    printf_lite("NET ok %d\n", checks);
    return 0;
}
