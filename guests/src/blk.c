/* blk: a virtio-blk (id 2) driver test guest. Probes the virtio_mmio.device= slots of the cmdline for the first
 * block device, negotiates (SEG_MAX, BLK_SIZE, FLUSH, DISCARD, WRITE_ZEROES, RO, INDIRECT_DESC; not EVENT_IDX),
 * reads and prints the config space, and runs the checks of one mode; completions come through the device IRQ.
 *
 * cmdline:
 *   jkrun.blk.mode=rw|ro|bad|bench     (rw)
 *   jkrun.blk.serial=<id>              the disk id GET_ID must return
 *   jkrun.blk.capacity=<sectors>       expected capacity (checked when given)
 *   jkrun.blk.seed=<n>                 ro/bad: the image holds pattern(seed); rw: the pattern seed written
 *   jkrun.test.timeout_ms=<ms>         each wait (30000)
 *   bench: jkrun.blk.bench=seq-write,seq-read,rand-write,rand-read  jkrun.blk.seq_mib=<MiB> (64)
 *          jkrun.blk.rand_ops=<n> (10000)  jkrun.blk.qd=<chains in flight> (16)  jkrun.blk.seed=<lcg seed> (1)
 *          jkrun.blk.seg=<bytes> (0: each request's data in one descriptor; else in descriptors of that size, a
 *          power of two of at least 512 with at most 128 of them a request, out of order in memory: a Linux
 *          guest's page-cache pages; qd at most 16)
 *
 * The data pattern: byte i of sector s is (uint8_t)(seed + 7*s + i + 0x80*(i >> 8)); reads compare six sample bytes
 * per sector (0, 1, 255, 256, 510, 511), never whole buffers: every guest instruction is emulated on kvm-pvm.
 * Prints "CONFIG ...", "CHECK <name> ok|FAIL <why> <value>", in rw mode "WROTE <sector> <n>" / "ZEROED <sector> <n>"
 * for every range it changed (the host replays them to verify the image), "IRQS <n>", then "BLK ok <checks>" or
 * "BLK FAIL <failures>"; exit 0 / 1. Bench prints "PHASE <name> start" / "PHASE <name> done <requests>" (the host
 * takes the timestamps; a write phase ends with one FLUSH), "STATS <name> kicks <n> irqs <n>" and "BENCH ok|FAIL".
 * Bench keeps qd chains in flight on the one queue, each a single ring descriptor pointing at its own indirect
 * table (header, data or its segments, status), all sharing one 1 MiB data buffer; it notifies only when the
 * device has not set VRING_USED_F_NO_NOTIFY, and takes completions in batches, sleeping (sti; hlt) only when none is
 * pending.
 */
#include "guest.h"

enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WRITE_ZEROES = 13 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2, S_NONE = 0xEE };
enum { F_SIZE_MAX = 1, F_SEG_MAX = 2, F_RO = 5, F_BLK_SIZE = 6, F_FLUSH = 9, F_DISCARD = 13, F_WRITE_ZEROES = 14,
       F_INDIRECT = 28, F_EVENT_IDX = 29 };
#define BIT(b) (1ULL << (b))
#define D_NEXT 1
#define D_WRITE 2
#define D_INDIRECT 4
#define U_NO_NOTIFY 1
#define SECTOR 512
#define Q 0
#define WZ_UNMAP 1
#define ID_BYTES 20
/* The bench's data buffer: 1 MiB at 16 MiB, outside the ELF and its .bss (nothing to zero or copy). */
#define BIG_BUF ((uint8_t *)0x1000000UL)
#define BIG_BUF_BYTES (1u << 20)
/* guest-physical address that is not RAM in a 64..255 MiB VM and not MMIO either */
#define NOT_RAM ((void *)0x10000000UL)

struct blk_hdr { uint32_t type, ioprio; uint64_t sector; };
struct blk_seg { uint64_t sector; uint32_t num, flags; };

static struct virtio_dev dev;
static uint64_t timeout_ms, capacity;
static uint32_t seg_max, blk_size, max_discard, max_discard_seg, max_wz, max_wz_seg, wz_unmap;
static int failures, checks;
static uint32_t used_len;   /* of the last completion */
static uint8_t seed;
static char serial[ID_BYTES + 1];

static struct blk_hdr hdr;
static volatile uint8_t status;
static uint8_t buf[3][4096] __attribute__((aligned(4096)));
static uint8_t idbuf[ID_BYTES + 8];
static struct vring_desc itab[4] __attribute__((aligned(16)));

static void check(const char *name, int ok, const char *why, uint64_t v) {
    checks++;
    if (ok) printf_lite("CHECK %s ok\n", name);
    else { printf_lite("CHECK %s FAIL %s 0x%lx\n", name, why, v); failures++; }
}

/* ---- the data pattern ------------------------------------------------------------------------------------ */

static uint8_t pat(uint8_t s, uint64_t sector, uint32_t i) { return (uint8_t)(s + sector * 7 + i + (i >> 8) * 0x80); }

/* bytes [from, from+n) of a request starting at sector0, written to dst */
static void fill(uint8_t *dst, uint64_t sector0, uint32_t from, uint32_t n, uint8_t s) {
    for (uint32_t k = 0; k < n; k++) { uint32_t o = from + k; dst[k] = pat(s, sector0 + o / SECTOR, o % SECTOR); }
}

static const uint16_t samples[] = { 0, 1, 255, 256, 510, 511 };
#define NSAMPLES 6

/* A data area made of up to three pieces (a request split over descriptors): byte o of the request lives in
 * piece k where o falls. */
struct area { uint8_t *p[3]; uint32_t n[3]; int count; };
static uint8_t *at(const struct area *a, uint32_t o) {
    for (int k = 0; k < a->count; k++) { if (o < a->n[k]) return a->p[k] + o; o -= a->n[k]; }
    return 0;
}
static struct area one(void *p, uint32_t n) { struct area a = { { p }, { n }, 1 }; return a; }

/* expected: pattern(s) (zero = 0) or zeros (zero = 1). Poison the samples first (with the complement of what
 * must arrive) so that a device that writes nothing fails. */
static void poison(const struct area *a, uint64_t sector0, uint32_t nsec, uint8_t s, int zero) {
    for (uint32_t q = 0; q < nsec; q++)
        for (int k = 0; k < NSAMPLES; k++)
            *at(a, q * SECTOR + samples[k]) = zero ? 0xA5 : (uint8_t)~pat(s, sector0 + q, samples[k]);
}
static uint64_t mismatch;   /* (sector << 16 | byte) of the first mismatch */
static int samples_ok(const struct area *a, uint64_t sector0, uint32_t nsec, uint8_t s, int zero) {
    for (uint32_t q = 0; q < nsec; q++)
        for (int k = 0; k < NSAMPLES; k++) {
            uint8_t want = zero ? 0 : pat(s, sector0 + q, samples[k]);
            if (*at(a, q * SECTOR + samples[k]) != want) { mismatch = (sector0 + q) << 16 | samples[k]; return 0; }
        }
    return 1;
}

/* ---- requests -------------------------------------------------------------------------------------------- */

/* One chain through the library; waits for it. 0 and the used length, or -1 (already reported). */
static int xfer(const char *name, const struct vbuf *b, int n, uint32_t *len) {
    int head = virtio_add(&dev, Q, b, n);
    if (head < 0) { check(name, 0, "queue full, descriptors", n); return -1; }
    virtio_notify(&dev, Q);
    struct vring_used_elem e;
    const char *err = virtio_wait_used(&dev, Q, &e, timeout_ms);
    if (err) { printf_lite("CHECK %s FAIL %s\n", name, err); failures++; checks++; return -1; }
    if (e.id != (uint32_t)head) { check(name, 0, "used id is not the head", e.id); return -1; }
    *len = used_len = e.len;
    return 0;
}

/* header, data (each piece device-writable when dwrite), status. Returns the status byte or -1. */
static int request_dir(const char *name, uint32_t type, uint64_t sector, const struct area *a, int dwrite, uint32_t *len) {
    hdr.type = type; hdr.ioprio = 0; hdr.sector = sector;
    status = S_NONE;
    struct vbuf b[6]; int n = 0;
    b[n++] = (struct vbuf){ &hdr, sizeof hdr, 0 };
    for (int k = 0; a && k < a->count; k++) b[n++] = (struct vbuf){ a->p[k], a->n[k], dwrite };
    b[n++] = (struct vbuf){ (void *)&status, 1, 1 };
    uint32_t l = 0;
    if (xfer(name, b, n, &l)) return -1;
    if (len) *len = l;
    return status;
}
static int request(const char *name, uint32_t type, uint64_t sector, const struct area *a, uint32_t *len) {
    return request_dir(name, type, sector, a, type == T_IN || type == T_GET_ID, len);
}

/* status (as returned by the request) and used length of the last completion as expected */
static int expect(const char *name, int st, int want, uint32_t want_len, int report_ok) {
    if (st < 0) return 0;
    if (st != want) { check(name, 0, "status", (uint64_t)st); return 0; }
    if (used_len != want_len) { check(name, 0, "used length", used_len); return 0; }
    if (report_ok) check(name, 1, 0, 0);
    return 1;
}

static int out_pattern(const char *name, uint64_t sector, uint32_t nsec, int report) {
    fill(buf[0], sector, 0, nsec * SECTOR, seed);
    struct area a = one(buf[0], nsec * SECTOR);
    uint32_t len;
    int ok = expect(name, request(name, T_OUT, sector, &a, &len), S_OK, 1, report);
    if (ok) printf_lite("WROTE %lu %u\n", sector, nsec);
    return ok;
}

/* IN of nsec sectors, compared with pattern(s) or zeros */
static int in_check(const char *name, uint64_t sector, uint32_t nsec, uint8_t s, int zero, int report) {
    struct area a = one(buf[1], nsec * SECTOR);
    poison(&a, sector, nsec, s, zero);
    uint32_t len;
    if (!expect(name, request(name, T_IN, sector, &a, &len), S_OK, nsec * SECTOR + 1, 0)) return 0;
    if (!samples_ok(&a, sector, nsec, s, zero)) { check(name, 0, "data differs at sector<<16|byte", mismatch); return 0; }
    if (report) check(name, 1, 0, 0);
    return 1;
}

static int segment_req(const char *name, uint32_t type, uint64_t sector, uint32_t num, uint32_t flags, int nseg) {
    static struct blk_seg seg[2];
    for (int k = 0; k < nseg; k++) { seg[k].sector = sector + k * num; seg[k].num = num; seg[k].flags = flags; }
    struct area a = one(seg, nseg * (uint32_t)sizeof seg[0]);
    uint32_t len;
    return request(name, type, 0, &a, &len);
}

static int get_id(const char *name, uint32_t n) {
    for (uint32_t k = 0; k < sizeof idbuf; k++) idbuf[k] = 0xA5;
    struct area a = one(idbuf, n);
    uint32_t len;
    if (!expect(name, request(name, T_GET_ID, 0, &a, &len), S_OK, (n < ID_BYTES ? n : ID_BYTES) + 1, 0)) return 0;
    for (uint32_t k = 0; k < n && k < ID_BYTES; k++)
        if (idbuf[k] != (uint8_t)serial[k]) { check(name, 0, "id differs at byte", k); return 0; }
    for (uint32_t k = n; k < sizeof idbuf; k++)
        if (idbuf[k] != 0xA5) { check(name, 0, "device wrote past the buffer at byte", k); return 0; }
    check(name, 1, 0, 0);
    return 1;
}

/* ---- hand-made chains (for what virtio_add cannot express) ------------------------------------------------ */

/* Waits for the next used element without the library's bookkeeping (its free_chain would follow a loop). */
static const char *wait_raw(struct vring_used_elem *e) {
    struct vq *v = &dev.vq[Q];
    uint64_t t0 = lapic_ticks;
    for (;;) {
        cli();
        if (v->used->idx != v->last_used) break;
        if (lapic_ticks - t0 > timeout_ms / 10 + 1) { sti(); return "timeout waiting for a used buffer"; }
        sti_hlt();
    }
    sti();
    barrier();
    *e = v->used->ring[v->last_used % v->size];
    v->last_used++;
    return 0;
}

enum raw_kind { RAW_LOOP, RAW_NEXT_RANGE, RAW_INDIRECT, RAW_INDIRECT_LOOP };

/* Publishes a chain built by hand on the first two free descriptors (left on the free list: only addr, len and
 * flags change, and "next" is restored) and waits for it. Returns the used length, or -1. */
static int raw_chain(const char *name, enum raw_kind kind, uint32_t *len) {
    struct vq *v = &dev.vq[Q];
    if (v->num_free < 2) { check(name, 0, "no free descriptors", v->num_free); return -1; }
    uint16_t i = v->free_head, j = v->desc[i].next, nj = j < v->size ? v->desc[j].next : 0;
    hdr.type = T_IN; hdr.ioprio = 0; hdr.sector = 0;
    status = S_NONE;
    switch (kind) {
    case RAW_LOOP:          /* i -> j -> i -> ... */
    case RAW_NEXT_RANGE:    /* i -> j -> 200 (>= queue size) */
        v->desc[i] = (struct vring_desc){ (uintptr_t)&hdr, sizeof hdr, D_NEXT, j };
        v->desc[j] = (struct vring_desc){ (uintptr_t)&status, 1, D_WRITE | D_NEXT, kind == RAW_LOOP ? i : 200 };
        break;
    case RAW_INDIRECT:      /* IN of sector 0 through an indirect table: hdr, data, status */
    case RAW_INDIRECT_LOOP: /* a table whose entries link 0 -> 1 -> 2 -> 1 ... */
        itab[0] = (struct vring_desc){ (uintptr_t)&hdr, sizeof hdr, D_NEXT, 1 };
        itab[1] = (struct vring_desc){ (uintptr_t)buf[1], SECTOR, D_WRITE | D_NEXT, 2 };
        itab[2] = (struct vring_desc){ (uintptr_t)&status, 1, D_WRITE | (kind == RAW_INDIRECT_LOOP ? D_NEXT : 0), 1 };
        v->desc[i] = (struct vring_desc){ (uintptr_t)itab, 3 * sizeof itab[0], D_INDIRECT, j };
        break;
    }
    v->avail->ring[v->avail->idx % v->size] = i;
    barrier();
    v->avail->idx++;
    virtio_notify(&dev, Q);
    struct vring_used_elem e;
    const char *err = wait_raw(&e);
    v->desc[i].next = j; v->desc[i].flags = 0;
    if (j < v->size) { v->desc[j].next = nj; v->desc[j].flags = 0; }
    if (err) { printf_lite("CHECK %s FAIL %s\n", name, err); failures++; checks++; return -1; }
    if (e.id != i) { check(name, 0, "used id is not the head", e.id); return -1; }
    *len = used_len = e.len;
    return 0;
}

/* ---- modes ----------------------------------------------------------------------------------------------- */

static void rw_checks(void) {
    uint64_t last = capacity - 1, mid = (capacity / 2) & ~7ULL;
    uint32_t len;
    get_id("get_id", ID_BYTES);

    /* OUT then IN: first, last and a middle 4 KiB; a sector never written reads as zeros */
    out_pattern("write_first", 0, 1, 1);
    out_pattern("write_last", last, 1, 1);
    out_pattern("write_mid", mid, 8, 1);
    in_check("read_first", 0, 1, seed, 0, 1);
    in_check("read_last", last, 1, seed, 0, 1);
    in_check("read_mid", mid, 8, seed, 0, 1);
    in_check("read_unwritten", 100, 2, 0, 1, 1);

    /* 8 sectors over four descriptors (not sector-sized, in another order in memory), read back over two */
    {
        uint64_t s = 16;
        fill(buf[0] + 3000, s, 0, 100, seed);
        fill(buf[0], s, 100, 2000, seed);
        fill(buf[0] + 2000, s, 2100, 996, seed);
        fill(buf[2], s, 3096, 1000, seed);
        struct vbuf b[6] = { { &hdr, sizeof hdr, 0 }, { buf[0] + 3000, 100, 0 }, { buf[0], 2000, 0 },
                             { buf[0] + 2000, 996, 0 }, { buf[2], 1000, 0 }, { (void *)&status, 1, 1 } };
        hdr = (struct blk_hdr){ T_OUT, 0, s };
        status = S_NONE;
        if (!xfer("multi_segment_out", b, 6, &len) && expect("multi_segment_out", status, S_OK, 1, 1))
            printf_lite("WROTE %lu %u\n", s, 8);
        struct area r = { { buf[2] + 2000, buf[1] }, { 700, 3396 }, 2 };
        poison(&r, s, 8, seed, 0);
        int st = request("multi_segment_in", T_IN, s, &r, &len);
        if (expect("multi_segment_in", st, S_OK, 4097, 0))
            check("multi_segment_in", samples_ok(&r, s, 8, seed, 0), "data differs at sector<<16|byte", mismatch);
    }

    /* data and status in one writable descriptor (VERSION_1 implies ANY_LAYOUT) */
    {
        struct vbuf b[2] = { { &hdr, sizeof hdr, 0 }, { buf[1], SECTOR + 1, 1 } };
        hdr = (struct blk_hdr){ T_IN, 0, 0 };
        struct area a = one(buf[1], SECTOR);
        poison(&a, 0, 1, seed, 0);
        buf[1][SECTOR] = S_NONE;
        if (!xfer("any_layout", b, 2, &len)) {
            if (buf[1][SECTOR] != S_OK || len != SECTOR + 1) check("any_layout", 0, "status<<32|len", (uint64_t)buf[1][SECTOR] << 32 | len);
            else check("any_layout", samples_ok(&a, 0, 1, seed, 0), "data differs at sector<<16|byte", mismatch);
        }
    }

    /* four OUTs in flight at once, then four INs: each with its own header and status */
    {
        static struct blk_hdr h[4];
        static volatile uint8_t st[4];
        int heads[4], ok = 1;
        for (int dir = 0; dir < 2 && ok; dir++) {
            for (int k = 0; k < 4; k++) {
                uint64_t s = 64 + 8 * k;
                h[k] = (struct blk_hdr){ dir ? T_IN : T_OUT, 0, s };
                st[k] = S_NONE;
                uint8_t *p = buf[dir ? 1 : 0] + k * SECTOR;
                if (dir) poison(&(struct area){ { p }, { SECTOR }, 1 }, s, 1, seed, 0); else fill(p, s, 0, SECTOR, seed);
                struct vbuf b[3] = { { &h[k], sizeof h[k], 0 }, { p, SECTOR, dir }, { (void *)&st[k], 1, 1 } };
                heads[k] = virtio_add(&dev, Q, b, 3);
                if (heads[k] < 0) { check("batch", 0, "queue full at request", k); return; }
            }
            virtio_notify(&dev, Q);
            int seen = 0;
            for (int n = 0; n < 4; n++) {
                struct vring_used_elem e;
                const char *err = virtio_wait_used(&dev, Q, &e, timeout_ms);
                if (err) { printf_lite("CHECK batch FAIL %s\n", err); failures++; checks++; return; }
                int k = 0;
                while (k < 4 && heads[k] != (int)e.id) k++;
                if (k == 4 || (seen & 1 << k)) { check("batch", 0, "unexpected used id", e.id); return; }
                seen |= 1 << k;
                if (st[k] != S_OK || e.len != (dir ? SECTOR + 1 : 1)) { ok = 0; check("batch", 0, "status<<32|len", (uint64_t)st[k] << 32 | e.len); }
                if (dir && ok && !samples_ok(&(struct area){ { buf[1] + k * SECTOR }, { SECTOR }, 1 }, 64 + 8 * k, 1, seed, 0)) {
                    ok = 0; check("batch", 0, "data differs at sector<<16|byte", mismatch);
                }
            }
            if (!dir && ok) for (int k = 0; k < 4; k++) printf_lite("WROTE %lu %u\n", (uint64_t)(64 + 8 * k), 1);
        }
        if (ok) check("batch", 1, 0, 0);
    }

    /* FLUSH */
    if (dev.driver_features & BIT(F_FLUSH)) expect("flush", request("flush", T_FLUSH, 0, 0, &len), S_OK, 1, 1);

    /* WRITE_ZEROES inside a written range; with UNMAP too */
    if (dev.driver_features & BIT(F_WRITE_ZEROES)) {
        if (out_pattern("write_zeroes_setup", 32, 8, 0) && out_pattern("write_zeroes_setup", 40, 8, 0)) {
            int st = segment_req("write_zeroes", T_WRITE_ZEROES, 33, 6, 0, 1);
            if (expect("write_zeroes", st, S_OK, 1, 0)) {
                printf_lite("ZEROED %lu %u\n", (uint64_t)33, 6);
                if (in_check("write_zeroes", 33, 6, 0, 1, 0) && in_check("write_zeroes", 32, 1, seed, 0, 0)
                    && in_check("write_zeroes", 39, 1, seed, 0, 0))
                    check("write_zeroes", 1, 0, 0);
            }
            if (wz_unmap) {
                st = segment_req("write_zeroes_unmap", T_WRITE_ZEROES, 40, 8, WZ_UNMAP, 1);
                if (expect("write_zeroes_unmap", st, S_OK, 1, 0)) {
                    printf_lite("ZEROED %lu %u\n", (uint64_t)40, 8);
                    in_check("write_zeroes_unmap", 40, 8, 0, 1, 1);
                }
            }
        }
    }

    /* DISCARD of 1 MiB (2048..4095) with data at both ends: status OK; what it reads afterwards is unspecified,
     * but both raw (a punched hole) and qcow2 (zero clusters) give zeros: reported, and the host checks it */
    if ((dev.driver_features & BIT(F_DISCARD)) && capacity >= 4096 + 8) {
        out_pattern("discard_setup", 2048, 1, 0);
        out_pattern("discard_setup", 4095, 1, 0);
        int st = segment_req("discard", T_DISCARD, 2048, 2048, 0, 1);
        if (expect("discard", st, S_OK, 1, 1)) {
            printf_lite("ZEROED %lu %u\n", (uint64_t)2048, 2048);
            struct area a = one(buf[1], SECTOR);
            poison(&a, 4095, 1, 0, 1);
            st = request("discard_read", T_IN, 4095, &a, 0);
            printf_lite("INFO discard reads zeros %d\n", st == S_OK && samples_ok(&a, 4095, 1, 0, 1));
        }
    }

    /* an IN through an indirect table */
    if (dev.driver_features & BIT(F_INDIRECT)) {
        struct area a = one(buf[1], SECTOR);
        poison(&a, 0, 1, seed, 0);
        if (!raw_chain("indirect", RAW_INDIRECT, &len)) {
            if (status != S_OK || len != SECTOR + 1) check("indirect", 0, "status<<32|len", (uint64_t)status << 32 | len);
            else check("indirect", samples_ok(&a, 0, 1, seed, 0), "data differs at sector<<16|byte", mismatch);
        }
    }
    if (dev.driver_features & BIT(F_FLUSH)) expect("flush_end", request("flush_end", T_FLUSH, 0, 0, &len), S_OK, 1, 1);
}

static void ro_checks(void) {
    uint64_t last = capacity - 1, mid = (capacity / 2) & ~7ULL;
    uint32_t len;
    check("features_ro", (dev.driver_features & BIT(F_RO)) != 0, "RO not offered, features", dev.device_features);
    get_id("get_id", ID_BYTES);
    in_check("read_first", 0, 1, seed, 0, 1);
    in_check("read_last", last, 1, seed, 0, 1);
    in_check("read_mid", mid, 8, seed, 0, 1);

    fill(buf[0], 0, 0, SECTOR, (uint8_t)(seed + 1));
    struct area a = one(buf[0], SECTOR);
    if (expect("out_refused", request("out_refused", T_OUT, 0, &a, &len), S_IOERR, 1, 0))
        in_check("out_refused", 0, 1, seed, 0, 1);
    if (expect("write_zeroes_refused", segment_req("write_zeroes_refused", T_WRITE_ZEROES, 0, 8, 0, 1), S_IOERR, 1, 0))
        in_check("write_zeroes_refused", 0, 8, seed, 0, 1);
    if (expect("discard_refused", segment_req("discard_refused", T_DISCARD, 0, 8, 0, 1), S_IOERR, 1, 0))
        in_check("discard_refused", 0, 8, seed, 0, 1);
    if (dev.device_features & BIT(F_FLUSH)) expect("flush", request("flush", T_FLUSH, 0, 0, &len), S_OK, 1, 1);
}

/* After a bad request the queue must still serve a good IN: sector 1 still holds the image's pattern. */
static void after(const char *name, int ok) {
    if (!ok) return;
    if (in_check(name, 1, 1, seed, 0, 0)) check(name, 1, 0, 0);
}

static void bad_checks(void) {
    uint64_t cap = capacity;
    uint32_t len;
    int st;
    struct area s1 = one(buf[1], SECTOR), s2 = one(buf[1], 2 * SECTOR), w = one(buf[0], SECTOR);
    fill(buf[0], 0, 0, 2 * SECTOR, (uint8_t)(seed + 1));

    st = request("beyond_capacity", T_IN, cap, &s1, &len);
    after("beyond_capacity", expect("beyond_capacity", st, S_IOERR, 1, 0));
    st = request("sector_huge", T_IN, 0xFFFFFFFFFFFFFFF0ULL, &s1, &len);
    after("sector_huge", expect("sector_huge", st, S_IOERR, 1, 0));
    st = request("sector_overflows_bytes", T_IN, 1ULL << 55, &s1, &len);
    after("sector_overflows_bytes", expect("sector_overflows_bytes", st, S_IOERR, 1, 0));
    st = request("straddle_end_in", T_IN, cap - 1, &s2, &len);
    after("straddle_end_in", expect("straddle_end_in", st, S_IOERR, 1, 0));
    w = one(buf[0], 2 * SECTOR);
    st = request("straddle_end_out", T_OUT, cap - 1, &w, &len);
    if (expect("straddle_end_out", st, S_IOERR, 1, 0) && in_check("straddle_end_out", cap - 1, 1, seed, 0, 0))
        after("straddle_end_out", 1);
    w = one(buf[0], SECTOR);
    st = request("out_beyond_capacity", T_OUT, cap, &w, &len);
    after("out_beyond_capacity", expect("out_beyond_capacity", st, S_IOERR, 1, 0));

    w = one(buf[0], 100);
    st = request("unaligned_out", T_OUT, 0, &w, &len);
    if (expect("unaligned_out", st, S_IOERR, 1, 0) && in_check("unaligned_out", 0, 1, seed, 0, 0)) after("unaligned_out", 1);
    struct area r700 = one(buf[1], 700);
    st = request("unaligned_in", T_IN, 0, &r700, &len);
    after("unaligned_in", expect("unaligned_in", st, S_IOERR, 1, 0));

    /* no status descriptor: nothing writable, so nothing can be answered; the chain comes back with length 0 */
    {
        struct vbuf b[2] = { { &hdr, sizeof hdr, 0 }, { buf[0], SECTOR, 0 } };
        hdr = (struct blk_hdr){ T_OUT, 0, 0 };
        if (!xfer("no_status", b, 2, &len)) {
            if (len != 0) check("no_status", 0, "used length", len);
            else if (in_check("no_status", 0, 1, seed, 0, 0)) after("no_status", 1);
        }
    }
    /* wrong directions */
    w = one(buf[0], SECTOR);
    st = request_dir("in_with_readable_data", T_IN, 0, &w, 0, &len);
    after("in_with_readable_data", expect("in_with_readable_data", st, S_IOERR, 1, 0));
    for (int k = 0; k < SECTOR; k += 128) buf[2][k] = 0x5C;
    struct area wr = one(buf[2], SECTOR);
    st = request_dir("out_with_writable_data", T_OUT, 0, &wr, 1, &len);
    if (expect("out_with_writable_data", st, S_IOERR, 1, 0)) {
        int untouched = 1;
        for (int k = 0; k < SECTOR; k += 128) untouched &= buf[2][k] == 0x5C;
        if (!untouched) check("out_with_writable_data", 0, "device wrote the data buffer", 0);
        else if (in_check("out_with_writable_data", 0, 1, seed, 0, 0)) after("out_with_writable_data", 1);
    }
    /* unknown request types */
    st = request("unknown_type", 99, 0, 0, &len);
    if (expect("unknown_type", st, S_UNSUPP, 1, 0)) {
        st = request("unknown_type", 0x80000000u, 0, 0, &len);
        after("unknown_type", expect("unknown_type", st, S_UNSUPP, 1, 0));
    }
    /* GET_ID into 8 bytes: the device fills only those (truncated, as QEMU) and nothing after them */
    if (get_id("get_id_short", 8)) after("get_id_short_then_in", 1);
    /* a header shorter than 16 bytes */
    {
        struct vbuf b[2] = { { &hdr, 8, 0 }, { (void *)&status, 1, 1 } };
        hdr = (struct blk_hdr){ T_IN, 0, 0 };
        status = S_NONE;
        if (!xfer("short_header", b, 2, &len)) after("short_header", expect("short_header", status, S_IOERR, 1, 0));
    }
    /* discard / write-zeroes segments: two segments (max 1), UNMAP on a discard, a reserved flag, out of range */
    after("discard_two_segments", expect("discard_two_segments", segment_req("discard_two_segments", T_DISCARD, 0, 1, 0, 2), S_IOERR, 1, 0));
    after("discard_unmap_flag", expect("discard_unmap_flag", segment_req("discard_unmap_flag", T_DISCARD, 0, 1, WZ_UNMAP, 1), S_UNSUPP, 1, 0));
    after("write_zeroes_reserved_flag", expect("write_zeroes_reserved_flag", segment_req("write_zeroes_reserved_flag", T_WRITE_ZEROES, 0, 1, 2, 1), S_UNSUPP, 1, 0));
    after("write_zeroes_beyond", expect("write_zeroes_beyond", segment_req("write_zeroes_beyond", T_WRITE_ZEROES, cap - 1, 2, 0, 1), S_IOERR, 1, 0));
    after("discard_beyond", expect("discard_beyond", segment_req("discard_beyond", T_DISCARD, cap, 1, 0, 1), S_IOERR, 1, 0));

    /* malformed chains: the device gives them back with length 0 and writes nothing */
    {
        struct vbuf b[3] = { { &hdr, sizeof hdr, 0 }, { (void *)&status, 1, 1 }, { buf[0], SECTOR, 0 } };
        hdr = (struct blk_hdr){ T_OUT, 0, 0 };
        status = S_NONE;
        if (!xfer("readable_after_writable", b, 3, &len))
            after("readable_after_writable", len == 0 && status == S_NONE ? 1 : (check("readable_after_writable", 0, "status<<32|len", (uint64_t)status << 32 | len), 0));
    }
    {
        struct vbuf b[3] = { { &hdr, sizeof hdr, 0 }, { NOT_RAM, SECTOR, 1 }, { (void *)&status, 1, 1 } };
        hdr = (struct blk_hdr){ T_IN, 0, 0 };
        status = S_NONE;
        if (!xfer("buffer_outside_ram", b, 3, &len))
            after("buffer_outside_ram", len == 0 && status == S_NONE ? 1 : (check("buffer_outside_ram", 0, "status<<32|len", (uint64_t)status << 32 | len), 0));
    }
    static const struct { const char *name; enum raw_kind kind; } raws[] = {
        { "chain_loop", RAW_LOOP }, { "next_out_of_range", RAW_NEXT_RANGE }, { "indirect_loop", RAW_INDIRECT_LOOP } };
    for (int k = 0; k < 3; k++) {
        if (raws[k].kind == RAW_INDIRECT_LOOP && !(dev.driver_features & BIT(F_INDIRECT))) continue;
        if (raw_chain(raws[k].name, raws[k].kind, &len)) continue;
        after(raws[k].name, len == 0 && status == S_NONE ? 1 : (check(raws[k].name, 0, "status<<32|len", (uint64_t)status << 32 | len), 0));
    }
}

/* ---- bench: several chains in flight, each one ring descriptor pointing at its own indirect table ---------- */

#define MAX_QD VQ_SIZE
static struct blk_hdr bh[MAX_QD];
static volatile uint8_t bst[MAX_QD];
static struct vring_desc btab[MAX_QD][3] __attribute__((aligned(16)));
/* jkrun.blk.seg: each request's data in SEG_QD x SEG_MAX_N descriptors at most */
#define SEG_QD 16
#define SEG_MAX_N 128
static struct vring_desc stab[SEG_QD][SEG_MAX_N + 2] __attribute__((aligned(16)));
static uint32_t seg_bytes;
static uint64_t lcg, kicks;

static uint64_t lcg_next(void) { lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL; return lcg >> 33; }

/* Notifies the device unless it said it is still working through the ring (VRING_USED_F_NO_NOTIFY); the fence
 * orders our avail idx store before the flags load (the device clears the flag, fences, then rereads avail idx). */
static void kick(struct vq *v) {
    __asm__ __volatile__("lock; addl $0, (%%rsp)" ::: "memory");
    if (!(v->used->flags & U_NO_NOTIFY)) { virtio_notify(&dev, Q); kicks++; }
}

/* Runs count requests of type with bs bytes each (0: none, as FLUSH), sequential from sector 0 or at random
 * bs-aligned offsets (the LCG from its seed). Returns the number of failed requests, or -1 on a transport error. */
static int bench_run(int qd, uint32_t type, uint64_t count, uint32_t bs, int random, uint64_t lcg_seed) {
    struct vq *v = &dev.vq[Q];
    uint64_t blocks = bs ? capacity * SECTOR / bs : 1, issued = 0, done = 0;
    int errors = 0;
    lcg = lcg_seed;
    uint32_t nseg = seg_bytes && bs > seg_bytes ? bs / seg_bytes : 0;
    for (int k = 0; k < qd; k++) {
        if (nseg) {
            /* segment i holds bytes [i*seg, (i+1)*seg) of the request, at slot (i*37) mod nseg of the buffer: no
             * two neighbours adjacent in memory (nseg a power of two, 37 odd: a permutation) */
            stab[k][0] = (struct vring_desc){ (uintptr_t)&bh[k], sizeof bh[k], D_NEXT, 1 };
            for (uint32_t i = 0; i < nseg; i++)
                stab[k][1 + i] = (struct vring_desc){ (uintptr_t)BIG_BUF + (uint64_t)(i * 37 % nseg) * seg_bytes,
                                                      seg_bytes, (uint16_t)(D_NEXT | (type == T_IN ? D_WRITE : 0)),
                                                      (uint16_t)(2 + i) };
            stab[k][1 + nseg] = (struct vring_desc){ (uintptr_t)&bst[k], 1, D_WRITE, 0 };
            v->desc[k] = (struct vring_desc){ (uintptr_t)stab[k], (nseg + 2) * 16, D_INDIRECT, 0 };
        } else {
            btab[k][0] = (struct vring_desc){ (uintptr_t)&bh[k], sizeof bh[k], D_NEXT, 1 };
            btab[k][1] = (struct vring_desc){ (uintptr_t)BIG_BUF, bs, (uint16_t)(D_NEXT | (type == T_IN ? D_WRITE : 0)), 2 };
            btab[k][2] = (struct vring_desc){ (uintptr_t)&bst[k], 1, D_WRITE, 0 };
            if (!bs) btab[k][1] = btab[k][2];   /* FLUSH: a two-entry table, header and status */
            v->desc[k] = (struct vring_desc){ (uintptr_t)btab[k], bs ? 48 : 32, D_INDIRECT, 0 };
        }
        bh[k].type = type; bh[k].ioprio = 0;
    }
    int next_slot = 0;
    uint64_t t0 = lapic_ticks;
    while (done < count) {
        /* fill free slots: the first qd from 0.., later each completed slot again */
        int added = 0;
        while (issued < count && next_slot < qd) {
            int k = next_slot++;
            bh[k].sector = random ? lcg_next() % blocks * (bs / SECTOR) : issued * (bs / SECTOR);
            bst[k] = S_NONE;
            v->avail->ring[v->avail->idx % v->size] = (uint16_t)k;
            barrier();
            v->avail->idx++;
            issued++; added++;
        }
        if (added) kick(v);
        cli();
        while (v->used->idx == v->last_used) {
            if (lapic_ticks - t0 > timeout_ms / 10 + 1) { sti(); printf_lite("BENCH FAIL timeout, %lu of %lu done\n", done, count); return -1; }
            sti_hlt();
            cli();
        }
        sti();
        barrier();
        next_slot = qd;
        while (v->used->idx != v->last_used) {
            struct vring_used_elem e = v->used->ring[v->last_used % v->size];
            v->last_used++;
            done++;
            t0 = lapic_ticks;
            if (e.id >= (uint32_t)qd) { printf_lite("BENCH FAIL used id %u\n", e.id); return -1; }
            if (bst[e.id] != S_OK) errors++;
            if (issued < count) {
                bh[e.id].sector = random ? lcg_next() % blocks * (bs / SECTOR) : issued * (bs / SECTOR);
                bst[e.id] = S_NONE;
                v->avail->ring[v->avail->idx % v->size] = (uint16_t)e.id;
                barrier();
                v->avail->idx++;
                issued++; added++;
            }
        }
        if (added) kick(v);
    }
    return errors;
}

static int bench(void) {
    char list[160];
    if (!cmdline_get("jkrun.blk.bench=", list, sizeof list)) { printf_lite("BENCH FAIL no jkrun.blk.bench= phases\n"); return 1; }
    if (!(dev.driver_features & BIT(F_INDIRECT))) { printf_lite("BENCH FAIL device does not offer INDIRECT_DESC\n"); return 1; }
    uint64_t seq_mib = cmdline_u64("jkrun.blk.seq_mib=", 64), rand_ops = cmdline_u64("jkrun.blk.rand_ops=", 10000);
    uint64_t lseed = cmdline_u64("jkrun.blk.seed=", 1);
    int qd = (int)cmdline_u64("jkrun.blk.qd=", 16);
    if (qd < 1) qd = 1;
    if (qd > dev.vq[Q].size) qd = dev.vq[Q].size;
    seg_bytes = (uint32_t)cmdline_u64("jkrun.blk.seg=", 0);
    if (seg_bytes && (seg_bytes < SECTOR || (seg_bytes & (seg_bytes - 1)) || BIG_BUF_BYTES / seg_bytes > SEG_MAX_N
                      || qd > SEG_QD)) {
        printf_lite("BENCH FAIL jkrun.blk.seg=%u: a power of two >= 512, at most %d a MiB, with qd <= %d\n", seg_bytes,
                    SEG_MAX_N, SEG_QD);
        return 1;
    }
    if (ram_top() < (uintptr_t)BIG_BUF + BIG_BUF_BYTES) { printf_lite("BENCH FAIL needs RAM up to 17 MiB\n"); return 1; }
    if (seq_mib * 2048 > capacity) { printf_lite("BENCH FAIL seq_mib %lu exceeds the disk\n", seq_mib); return 1; }
    printf_lite("BENCH qd %d seq_mib %lu rand_ops %lu seed %lu seg %u\n", qd, seq_mib, rand_ops, lseed, seg_bytes);
    int bad = 0;
    for (char *p = list; *p;) {
        char *q = p;
        while (*q && *q != ',') q++;
        char c = *q; *q = 0;
        int wr = 0, rnd = 0, known = 1;
        if (!strncmp(p, "seq-write", 10)) wr = 1;
        else if (!strncmp(p, "seq-read", 9)) ;
        else if (!strncmp(p, "rand-write", 11)) wr = rnd = 1;
        else if (!strncmp(p, "rand-read", 10)) rnd = 1;
        else known = 0;
        if (!known) { printf_lite("BENCH FAIL unknown phase %s\n", p); return 1; }
        uint64_t count = rnd ? rand_ops : seq_mib;
        uint32_t bs = rnd ? 4096 : BIG_BUF_BYTES;
        printf_lite("PHASE %s start\n", p);
        uint64_t kicks0 = kicks; uint32_t irqs0 = dev.irq_count;
        int e = bench_run(qd, wr ? T_OUT : T_IN, count, bs, rnd, lseed);
        if (e >= 0 && wr && (dev.driver_features & BIT(F_FLUSH))) {
            int f = bench_run(1, T_FLUSH, 1, 0, 0, 0);
            e = f < 0 ? f : e + f;
        }
        if (e < 0) return 1;
        printf_lite("PHASE %s done %lu\n", p, count);
        printf_lite("STATS %s kicks %lu irqs %u\n", p, kicks - kicks0, dev.irq_count - irqs0);
        if (e) { printf_lite("BENCH FAIL %s: %d requests failed\n", p, e); bad = 1; }
        p = c ? q + 1 : q;
    }
    printf_lite("IRQS %u\n", dev.irq_count);
    printf_lite(bad ? "BENCH FAIL\n" : "BENCH ok\n");
    return bad;
}

/* ---- main ------------------------------------------------------------------------------------------------ */

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    paging_init();
    idt_init();
    timeout_ms = cmdline_u64("jkrun.test.timeout_ms=", 30000);
    seed = (uint8_t)cmdline_u64("jkrun.blk.seed=", 0x5A);
    char mode[16] = "rw";
    cmdline_get("jkrun.blk.mode=", mode, sizeof mode);
    if (!cmdline_get("jkrun.blk.serial=", serial, sizeof serial)) serial[0] = 0;

    uintptr_t base = 0; int irq = -1;
    for (int k = 0;; k++) {
        if (virtio_find(k, &base, &irq)) fail("no virtio-blk device on the cmdline");
        if (readl(base) == 0x74726976 && readl(base + 8) == 2) break;
    }
    printf_lite("VIRTIO 0x%lx irq %d\n", (uint64_t)base, irq);
    const char *err = virtio_init(&dev, base, irq, 2,
            BIT(F_SEG_MAX) | BIT(F_BLK_SIZE) | BIT(F_FLUSH) | BIT(F_DISCARD) | BIT(F_WRITE_ZEROES) | BIT(F_RO) | BIT(F_INDIRECT));
    if (!err) err = virtio_setup_queue(&dev, Q);
    if (err) fail(err);
    /* struct virtio_blk_config at 0x100 */
    uintptr_t c = base + 0x100;
    capacity = readl(c) | (uint64_t)readl(c + 4) << 32;
    seg_max = readl(c + 12); blk_size = readl(c + 20);
    max_discard = readl(c + 36); max_discard_seg = readl(c + 40);
    max_wz = readl(c + 48); max_wz_seg = readl(c + 52); wz_unmap = readl(c + 56) & 0xff;
    printf_lite("CONFIG capacity %lu seg_max %u blk_size %u max_discard_sectors %u max_discard_seg %u "
                "discard_alignment %u max_write_zeroes_sectors %u max_write_zeroes_seg %u write_zeroes_may_unmap %u\n",
                capacity, seg_max, blk_size, max_discard, max_discard_seg, readl(c + 44), max_wz, max_wz_seg, wz_unmap);
    err = virtio_driver_ok(&dev);
    if (err) fail(err);
    virtio_enable_irq(&dev);
    printf_lite("FEATURES offered 0x%lx accepted 0x%lx\n", dev.device_features, dev.driver_features);

    if (!strncmp(mode, "bench", 6)) return bench();

    /* features and config, common to the check modes */
    uint64_t f = dev.device_features;
    int ro = !strncmp(mode, "ro", 3);
    uint64_t need = BIT(F_SEG_MAX) | BIT(F_FLUSH) | BIT(F_DISCARD) | BIT(F_WRITE_ZEROES);
    check("features", (f & need) == need && !!(f & BIT(F_RO)) == ro, "offered", f);
    uint64_t want_cap = cmdline_u64("jkrun.blk.capacity=", 0);
    check("config", capacity > 16 && (!want_cap || capacity == want_cap) && seg_max >= 2
          && (!(f & BIT(F_BLK_SIZE)) || blk_size == SECTOR)
          && max_discard >= 1 && max_discard_seg >= 1 && max_wz >= 1 && max_wz_seg >= 1, "capacity", capacity);

    if (!strncmp(mode, "rw", 3)) rw_checks();
    else if (ro) ro_checks();
    else if (!strncmp(mode, "bad", 4)) bad_checks();
    else { printf_lite("FAIL: unknown jkrun.blk.mode=%s\n", mode); return 1; }

    printf_lite("IRQS %u\n", dev.irq_count);
    check("interrupts", dev.irq_count > 0, "no interrupt taken", 0);
    if (failures) { printf_lite("BLK FAIL %d of %d\n", failures, checks); return 1; }
    printf_lite("BLK ok %d\n", checks);
    return 0;
}
