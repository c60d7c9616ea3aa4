/* rng: a virtio-rng (id 4) driver test guest (virtio 1.2 §5.4). Finds the first virtio_mmio.device= announcing id 4,
 * checks that it has one queue, no config space and no device feature bits, negotiates INDIRECT_DESC (not EVENT_IDX),
 * and posts requestq chains, each completion taken through the device IRQ:
 *   one_byte        a 1-byte buffer: used length 1, the bytes around it untouched
 *   page            4 KiB: used 4096, not the poison, not mostly zeros
 *   two_reads       two 4 KiB reads differ, and neither repeats its first 64 bytes right after them
 *   max_request     64 KiB: used 65536, samples across it filled
 *   over_max        96 KiB in one buffer, then 2 x 40000 bytes: used 65536 both times, nothing written past 64 KiB
 *   multi_desc      a chain of three buffers (1, 100, 4000 bytes) apart in memory: used 4101, each filled, the gaps
 *                   between them untouched
 *   indirect        one ring descriptor pointing at an indirect table of four writable buffers: used 2048
 *   readable        a chain with a device-readable descriptor (alone, and before a writable one): used 0 and the
 *                   writable part untouched; a zero-length writable buffer: used 0
 *   batch           15 chains of 4 KiB posted at once with one notify: each comes back with 4096
 *   after           a last 4 KiB read still works
 * cmdline: jkrun.test.timeout_ms=<ms> (10000) for each wait
 * Prints "FEATURES 0x..", "CHECK <name> ok|FAIL <why> <value>", "IRQS <n>", and "RNG ok <checks>" or "RNG FAIL <n>";
 * exit 0 / 1. Buffers are poisoned with 0xA5 first; randomness is judged by counting bytes (a device that writes
 * nothing, zeros or a constant fails; 4096 uniform bytes hold 16 of each value on average, never 64 in practice).
 * Large buffers are checked at samples only: every guest instruction is emulated on kvm-pvm. */
#include "guest.h"

#define DEVICE_RNG 4
#define F_INDIRECT 28
#define F_EVENT_IDX 29
#define BIT(b) (1ULL << (b))
#define D_WRITE 2
#define D_INDIRECT 4
#define Q 0
#define POISON 0xA5
#define PAGE 4096
#define MAX_REQ 65536u
/* 96 KiB (plus guards) for the big requests at 16 MiB, 15 pages for the batch at 17 MiB: outside the ELF */
#define BIG ((uint8_t *)0x1000000UL)
#define BIG_BYTES (96u << 10)
#define BATCH ((uint8_t *)0x1100000UL)
#define NBATCH 15

static struct virtio_dev dev;
static uint64_t timeout_ms;
static int failures, checks;

static uint8_t small[PAGE] __attribute__((aligned(64)));
static uint8_t page_a[PAGE] __attribute__((aligned(64)));
static uint8_t page_b[PAGE] __attribute__((aligned(64)));
static uint8_t pieces[3][PAGE] __attribute__((aligned(64)));
static uint8_t ro[16];
static struct vring_desc itab[4] __attribute__((aligned(16)));

static void check(const char *name, int ok, const char *why, uint64_t v) {
    checks++;
    if (ok) printf_lite("CHECK %s ok\n", name);
    else { printf_lite("CHECK %s FAIL %s 0x%lx\n", name, why, v); failures++; }
}

static void poison(uint8_t *p, uint32_t n) {
    uint32_t k = 0;
    for (; k + 8 <= n && ((uintptr_t)(p + k) & 7) == 0; k += 8) *(uint64_t *)(p + k) = 0xA5A5A5A5A5A5A5A5ULL;
    for (; k < n; k++) p[k] = POISON;
}

/* How many of the n bytes from p (every stride-th) equal v. */
static uint32_t count(const uint8_t *p, uint32_t n, uint32_t stride, uint8_t v) {
    uint32_t c = 0;
    for (uint32_t k = 0; k < n; k += stride) c += p[k] == v;
    return c;
}

/* Bytes that look random: few equal the poison, few are zero. samples = n / stride. */
static int looks_random(const uint8_t *p, uint32_t n, uint32_t stride, uint32_t *bad) {
    uint32_t samples = (n + stride - 1) / stride, limit = samples / 64 + 4;   /* 4x the expected 1/256, plus slack */
    uint32_t pc = count(p, n, stride, POISON), zc = count(p, n, stride, 0);
    *bad = pc > zc ? pc : zc;
    return pc <= limit && zc <= limit;
}

static int untouched(const uint8_t *p, uint32_t n, uint32_t stride) { return count(p, n, stride, POISON) == (n + stride - 1) / stride; }

/* One chain through the library; waits for it. Returns the used length, or -1 (already reported). */
static int64_t xfer(const char *name, const struct vbuf *b, int n) {
    int head = virtio_add(&dev, Q, b, n);
    if (head < 0) { check(name, 0, "queue full, descriptors", n); return -1; }
    virtio_notify(&dev, Q);
    struct vring_used_elem e;
    const char *err = virtio_wait_used(&dev, Q, &e, timeout_ms);
    if (err) { printf_lite("CHECK %s FAIL %s\n", name, err); failures++; checks++; return -1; }
    if (e.id != (uint32_t)head) { check(name, 0, "used id is not the head", e.id); return -1; }
    return e.len;
}

static int64_t read_one(const char *name, uint8_t *p, uint32_t n) {
    struct vbuf b = { p, n, 1 };
    return xfer(name, &b, 1);
}

/* ---- the checks ------------------------------------------------------------------------------------------ */

static void one_byte(void) {
    poison(small, 64);
    int64_t len = read_one("one_byte", small + 8, 1);
    if (len < 0) return;
    if (len != 1) { check("one_byte", 0, "used length", (uint64_t)len); return; }
    check("one_byte", untouched(small, 8, 1) && untouched(small + 9, 55, 1), "bytes around it changed", 0);
}

static void page(void) {
    poison(page_a, PAGE);
    int64_t len = read_one("page", page_a, PAGE);
    if (len < 0) return;
    uint32_t bad = 0;
    if (len != PAGE) check("page", 0, "used length", (uint64_t)len);
    else check("page", looks_random(page_a, PAGE, 1, &bad), "bytes equal to the poison or zero", bad);
}

static void two_reads(void) {
    poison(page_a, PAGE);
    poison(page_b, PAGE);
    int64_t a = read_one("two_reads", page_a, PAGE);
    if (a < 0) return;
    int64_t b = read_one("two_reads", page_b, PAGE);
    if (b < 0) return;
    if (a != PAGE || b != PAGE) { check("two_reads", 0, "used lengths a<<32|b", (uint64_t)a << 32 | (uint64_t)b); return; }
    check("two_reads", memcmp(page_a, page_b, PAGE) != 0, "the two reads are the same", 0);
    check("no_repeat", memcmp(page_a, page_a + 64, 64) != 0 && memcmp(page_b, page_b + 64, 64) != 0,
          "a read repeats its first 64 bytes", 0);
}

static void max_request(void) {
    poison(BIG, MAX_REQ + 64);
    int64_t len = read_one("max_request", BIG, MAX_REQ);
    if (len < 0) return;
    uint32_t bad = 0;
    if (len != MAX_REQ) check("max_request", 0, "used length", (uint64_t)len);
    else if (!looks_random(BIG, MAX_REQ, 61, &bad)) check("max_request", 0, "samples equal to the poison or zero", bad);
    else check("max_request", untouched(BIG + MAX_REQ, 64, 1), "written past the buffer", 0);
}

static void over_max(void) {
    poison(BIG, BIG_BYTES);
    int64_t len = read_one("over_max", BIG, BIG_BYTES);
    if (len < 0) return;
    uint32_t bad = 0;
    if (len != MAX_REQ) { check("over_max", 0, "used length", (uint64_t)len); return; }
    if (!looks_random(BIG, MAX_REQ, 61, &bad)) { check("over_max", 0, "samples equal to the poison or zero", bad); return; }
    check("over_max", untouched(BIG + MAX_REQ, BIG_BYTES - MAX_REQ, 1), "written past 64 KiB", 0);

    /* the bound is per chain, not per descriptor */
    poison(BIG, 2 * 40000);
    struct vbuf b[2] = { { BIG, 40000, 1 }, { BIG + 40000, 40000, 1 } };
    len = xfer("over_max_split", b, 2);
    if (len < 0) return;
    if (len != MAX_REQ) { check("over_max_split", 0, "used length", (uint64_t)len); return; }
    if (!looks_random(BIG, MAX_REQ, 61, &bad)) { check("over_max_split", 0, "samples equal to the poison or zero", bad); return; }
    check("over_max_split", untouched(BIG + MAX_REQ, 2 * 40000 - MAX_REQ, 1), "written past 64 KiB", 0);
}

static void multi_desc(void) {
    for (int k = 0; k < 3; k++) poison(pieces[k], PAGE);
    /* 1 byte at pieces[0]+100, 100 bytes at pieces[1]+50, 4000 bytes at pieces[2]+40 */
    struct vbuf b[3] = { { pieces[0] + 100, 1, 1 }, { pieces[1] + 50, 100, 1 }, { pieces[2] + 40, 4000, 1 } };
    int64_t len = xfer("multi_desc", b, 3);
    if (len < 0) return;
    uint32_t bad = 0;
    if (len != 4101) { check("multi_desc", 0, "used length", (uint64_t)len); return; }
    int gaps = untouched(pieces[0], 100, 1) && untouched(pieces[0] + 101, PAGE - 101, 1) && untouched(pieces[1], 50, 1)
            && untouched(pieces[1] + 150, PAGE - 150, 1) && untouched(pieces[2], 40, 1) && untouched(pieces[2] + 4040, PAGE - 4040, 1);
    if (!gaps) { check("multi_desc", 0, "bytes outside the buffers changed", 0); return; }
    /* the 100-byte piece: a few poison bytes by chance at most */
    if (count(pieces[1] + 50, 100, 1, POISON) > 8) { check("multi_desc", 0, "second buffer not filled", count(pieces[1] + 50, 100, 1, POISON)); return; }
    check("multi_desc", looks_random(pieces[2] + 40, 4000, 1, &bad), "third buffer not filled", bad);
}

static void indirect(void) {
    if (!(dev.driver_features & BIT(F_INDIRECT))) { check("indirect", 0, "INDIRECT_DESC not offered", dev.device_features); return; }
    struct vq *v = &dev.vq[Q];
    if (v->num_free < 1) { check("indirect", 0, "no free descriptors", 0); return; }
    poison(BIG, 4 * 512 + 64);
    for (int k = 0; k < 4; k++)
        itab[k] = (struct vring_desc){ (uintptr_t)(BIG + 512 * k), 512, D_WRITE | (k < 3 ? 1 : 0), (uint16_t)(k + 1) };
    /* one descriptor taken off the library's free list by hand (virtio_add cannot set INDIRECT); the library's
     * wait puts it back (the chain is that one descriptor: no NEXT) */
    uint16_t i = v->free_head;
    v->free_head = v->desc[i].next;
    v->num_free--;
    v->desc[i] = (struct vring_desc){ (uintptr_t)itab, sizeof itab, D_INDIRECT, 0 };
    v->avail->ring[v->avail->idx % v->size] = i;
    barrier();
    v->avail->idx++;
    virtio_notify(&dev, Q);
    struct vring_used_elem e;
    const char *err = virtio_wait_used(&dev, Q, &e, timeout_ms);
    if (err) { printf_lite("CHECK indirect FAIL %s\n", err); failures++; checks++; return; }
    uint32_t bad = 0;
    if (e.id != i) check("indirect", 0, "used id is not the head", e.id);
    else if (e.len != 2048) check("indirect", 0, "used length", e.len);
    else if (!looks_random(BIG, 2048, 1, &bad)) check("indirect", 0, "bytes equal to the poison or zero", bad);
    else check("indirect", untouched(BIG + 2048, 64, 1), "written past the table's buffers", 0);
}

static void readable(void) {
    poison(page_a, 256);
    for (int k = 0; k < 16; k++) ro[k] = (uint8_t)k;
    struct vbuf alone = { ro, sizeof ro, 0 };
    int64_t len = xfer("readable_alone", &alone, 1);
    if (len >= 0) check("readable_alone", len == 0, "used length", (uint64_t)len);
    struct vbuf mixed[2] = { { ro, sizeof ro, 0 }, { page_a, 256, 1 } };
    len = xfer("readable_then_writable", mixed, 2);
    if (len >= 0) {
        if (len != 0) check("readable_then_writable", 0, "used length", (uint64_t)len);
        else check("readable_then_writable", untouched(page_a, 256, 1), "the writable part was written", 0);
    }
    int same = 1;
    for (int k = 0; k < 16; k++) same &= ro[k] == (uint8_t)k;
    check("readable_unchanged", same, "the device wrote into a readable buffer", 0);
    struct vbuf empty = { page_a, 0, 1 };
    len = xfer("zero_length", &empty, 1);
    if (len >= 0) check("zero_length", len == 0, "used length", (uint64_t)len);
}

static void batch(void) {
    struct vq *v = &dev.vq[Q];
    int heads[NBATCH], seen[NBATCH];
    poison(BATCH, NBATCH * PAGE);
    for (int k = 0; k < NBATCH; k++) {
        struct vbuf b = { BATCH + k * PAGE, PAGE, 1 };
        heads[k] = virtio_add(&dev, Q, &b, 1);
        seen[k] = 0;
        if (heads[k] < 0) { check("batch", 0, "queue full at chain", k); return; }
    }
    virtio_notify(&dev, Q);
    for (int n = 0; n < NBATCH; n++) {
        struct vring_used_elem e;
        const char *err = virtio_wait_used(&dev, Q, &e, timeout_ms);
        if (err) { printf_lite("CHECK batch FAIL %s (after %d)\n", err, n); failures++; checks++; return; }
        int k = 0;
        while (k < NBATCH && heads[k] != (int)e.id) k++;
        if (k == NBATCH || seen[k]) { check("batch", 0, "unknown or repeated used id", e.id); return; }
        seen[k] = 1;
        if (e.len != PAGE) { check("batch", 0, "used length", e.len); return; }
    }
    uint32_t bad = 0;
    for (int k = 0; k < NBATCH; k++)
        if (!looks_random(BATCH + k * PAGE, PAGE, 7, &bad)) { check("batch", 0, "a page not filled, k<<32|bad", (uint64_t)k << 32 | bad); return; }
    check("batch", v->num_free == v->size, "descriptors not all returned", v->num_free);
}

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    paging_init();
    idt_init();
    timeout_ms = cmdline_u64("jkrun.test.timeout_ms=", 10000);
    uintptr_t base = 0; int irq = -1, found = 0;
    for (int k = 0; !found && !virtio_find(k, &base, &irq); k++) found = readl(base + 0x08) == DEVICE_RNG;
    if (!found) fail("no virtio-rng device announced");

    /* before the handshake: one queue only (QueueNumMax of queue 1 is 0), no config space */
    writel(base + 0x30, 1);
    uint32_t max1 = readl(base + 0x34);
    writel(base + 0x30, 0);
    uint32_t max0 = readl(base + 0x34);
    uint32_t cfg = readl(base + 0x100) | readl(base + 0x104) | readl(base + 0x1fc);
    const char *err = virtio_init(&dev, base, irq, DEVICE_RNG, BIT(F_INDIRECT));
    if (!err) err = virtio_setup_queue(&dev, Q);
    if (!err) err = virtio_driver_ok(&dev);
    if (err) fail(err);
    virtio_enable_irq(&dev);
    printf_lite("FEATURES 0x%lx\n", dev.device_features);
    check("one_queue", max0 > 0 && max1 == 0, "QueueNumMax q0<<32|q1", (uint64_t)max0 << 32 | max1);
    check("no_config_space", cfg == 0, "config words", cfg);
    /* device-specific feature bits are 0..23: virtio-rng has none */
    check("no_device_features", (dev.device_features & 0xFFFFFFull) == 0 && (dev.device_features & BIT(32)),
          "features", dev.device_features);

    one_byte();
    page();
    two_reads();
    max_request();
    over_max();
    multi_desc();
    indirect();
    readable();
    batch();
    poison(page_a, PAGE);
    int64_t len = read_one("after", page_a, PAGE);
    if (len >= 0) check("after", len == PAGE, "used length", (uint64_t)len);

    printf_lite("IRQS %u\n", dev.irq_count);
    if (failures) { printf_lite("RNG FAIL %d\n", failures); return 1; }
    printf_lite("RNG ok %d\n", checks);
    return 0;
}
