/* hostile: a hostile guest. It attacks the virtio-mmio devices from inside the VM and checks after each attack that
 * the VMM still serves it: a bystander disk answers a read with the right data, and the attacked device works again
 * after a reset. Disks are told apart by their serial (GET_ID), the console by its device id:
 *   hostile-victim     the attacked disk, holding pattern(victim_seed) (blk.c's pattern)
 *   hostile-bystander  a second disk, holding pattern(bystander_seed); it must keep working through everything
 *   hostile-big        optional, read-only, zeros, at least 1 TiB + 1 MiB: chain_terabytes reads it for real
 *   virtio-console     the console cases' victim
 *
 * cmdline:
 *   jkrun.hostile.case=<name>[,<name>...]|all   (all)
 *   jkrun.hostile.victim_seed=<n> (0x5A)  jkrun.hostile.bystander_seed=<n> (0x3C)
 *   jkrun.hostile.flood=<n> (20000)             console_ctrl_flood: control messages sent
 *   jkrun.hostile.reset_ms=<ms> (1000)          reset_long_chain: the longest a reset may hold the vCPU
 *   jkrun.test.timeout_ms=<ms> (5000)           each wait for a device
 * Needs 64 MiB of RAM: big chains are built in a 1 MiB indirect table at 32 MiB, over a buffer at 16 MiB.
 *
 * Prints "STEP <case> <attack> <check> FAIL <why> (0x<value>)" for each failed check, "INFO ..." on what the device
 * chose, "CASE <name> ok <checks> checks <ms> ms" or "CASE <name> FAIL <failed> of <checks> checks", then
 * "HOSTILE ok <cases>" or "HOSTILE FAIL <failed> of <cases>"; exit 0 when every case was ok.
 *
 * Refusals are judged liberally (the chain back with length 0 and its status untouched, an IOERR status, or
 * DEVICE_NEEDS_RESET in the status register); survival strictly (the bystander's read, the attacked device's read
 * after a reset, and guest memory the device must not have written).
 */
#include "guest.h"

enum { R_MAGIC = 0x00, R_VERSION = 0x04, R_DEVICE_ID = 0x08, R_QSEL = 0x30, R_QNUM_MAX = 0x34, R_QNUM = 0x38,
       R_QREADY = 0x44, R_QNOTIFY = 0x50, R_STATUS = 0x70, R_QDESC = 0x80, R_QDRIVER = 0x90, R_QDEVICE = 0xA0 };
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8, S_NEEDS_RESET = 0x40, S_FAILED = 0x80 };
enum { T_IN = 0, T_OUT = 1, T_GET_ID = 8 };
enum { B_OK = 0, B_IOERR = 1, B_NONE = 0xEE };
enum { C_DEVICE_READY = 0, C_PORT_READY = 3 };
enum { W_USED, W_TIMEOUT, W_NEEDS_RESET };
#define BIT(b) (1ULL << (b))
#define F_MULTIPORT 1
#define F_INDIRECT 28
#define D_NEXT 1
#define D_WRITE 2
#define D_INDIRECT 4
#define SECTOR 512
#define ID_BYTES 20
#define ATTACKED_SECTOR 5
#define BIG_BUF 0x1000000UL                          /* 16 MiB that every big chain's descriptors overlap on */
#define BIG_LEN (16u << 20)
#define TABLE ((struct vring_desc *)0x2000000UL)     /* a 65536-entry indirect table, 1 MiB */
#define TABLE_N 65536u
#define RAM_NEEDED 0x2100000UL

struct blk_hdr { uint32_t type, ioprio; uint64_t sector; };
struct blkdev {
    const char *id;
    struct virtio_dev d;
    uintptr_t base; int irq;
    uint8_t seed; int zeros;        /* the image: pattern(seed), or zeros */
    uint64_t capacity;
    uint8_t *page;                  /* its queue */
};
struct where { const char *name; uint64_t addr; };

static uint8_t vic_page[4096] __attribute__((aligned(4096)));
static uint8_t bys_page[4096] __attribute__((aligned(4096)));
static uint8_t big_page[4096] __attribute__((aligned(4096)));
static uint8_t probe_page[4096] __attribute__((aligned(4096)));
static uint8_t con_pages[4][4096] __attribute__((aligned(4096)));
static struct blkdev vic = { .id = "hostile-victim", .page = vic_page };
static struct blkdev bys = { .id = "hostile-bystander", .page = bys_page };
static struct blkdev big = { .id = "hostile-big", .page = big_page, .zeros = 1 };
static struct blkdev probe = { .page = probe_page };
static struct virtio_dev con;
static uintptr_t con_base;
static int con_irq = -1;
static uint64_t timeout_ms, tsc_per_ms = 1;

/* ---- reporting ------------------------------------------------------------------------------------------------ */

static const char *cur_case;
static int case_checks, case_failed;
static uint64_t why;                /* shown with the next failure */

static void step(const char *attack, const char *check, const char *err) {
    case_checks++;
    if (err) {
        case_failed++;
        printf_lite("STEP %s %s %s FAIL %s (0x%lx)\n", cur_case, attack, check, err, why);
    }
    why = 0;
}

static char namebuf[96];
static const char *cat(const char *a, const char *b) {    /* "a@b", for attack names */
    size_t i = 0;
    for (; *a && i < 44; a++) namebuf[i++] = *a;
    namebuf[i++] = '@';
    for (; *b && i < 94; b++) namebuf[i++] = *b;
    namebuf[i] = 0;
    return namebuf;
}

/* ---- device access -------------------------------------------------------------------------------------------- */

static uint32_t rd(uintptr_t base, uint32_t r) { return readl(base + r); }
static void wr(uintptr_t base, uint32_t r, uint32_t v) { writel(base + r, v); }
static void wr64(uintptr_t base, uint32_t r, uint64_t v) { wr(base, r, (uint32_t)v); wr(base, r + 4, (uint32_t)(v >> 32)); }
static void sleep_ms(uint64_t ms) { uint64_t t = lapic_ticks; while (lapic_ticks - t < ms / 10 + 1) sti_hlt(); }
static uint64_t ram_top_page(void) { return ram_top() & ~0xFFFULL; }

static uint8_t pat(uint8_t s, uint64_t sector, uint32_t i) { return (uint8_t)(s + sector * 7 + i + (i >> 8) * 0x80); }
static const uint16_t samples[] = { 0, 1, 255, 256, 510, 511 };

static const char *blk_up(struct blkdev *b) {
    const char *err = virtio_init(&b->d, b->base, b->irq, 2, BIT(F_INDIRECT));
    if (!err) err = virtio_setup_queue_on(&b->d, 0, b->page);
    if (!err) err = virtio_driver_ok(&b->d);
    if (err) return err;
    virtio_enable_irq(&b->d);
    b->capacity = rd(b->base, 0x100) | (uint64_t)rd(b->base, 0x104) << 32;
    return 0;
}

static struct blk_hdr rhdr;
static volatile uint8_t rstatus;
static uint8_t rbuf[SECTOR];
static uint8_t idbuf[ID_BYTES + 1];

/* A well-formed request through the library: header, data (device-writable), status. */
static const char *request(struct blkdev *b, uint32_t type, uint64_t sector, void *data, uint32_t len, uint32_t *used) {
    rhdr = (struct blk_hdr){ type, 0, sector };
    rstatus = B_NONE;
    struct vbuf v[3] = { { &rhdr, sizeof rhdr, 0 }, { data, len, 1 }, { (void *)&rstatus, 1, 1 } };
    int head = virtio_add(&b->d, 0, v, 3);
    if (head < 0) return "queue full";
    virtio_notify(&b->d, 0);
    struct vring_used_elem e;
    const char *err = virtio_wait_used(&b->d, 0, &e, timeout_ms);
    if (err) return err;
    if (e.id != (uint32_t)head) { why = e.id; return "used id is not the head"; }
    if (rstatus != B_OK) { why = rstatus; return "status is not OK"; }
    *used = e.len;
    return 0;
}

/* One sector from b, compared with the image at six samples (every guest instruction costs on kvm-pvm). */
static const char *read_check(struct blkdev *b, uint64_t sector) {
    for (int k = 0; k < 6; k++) rbuf[samples[k]] = (uint8_t)~(b->zeros ? 0 : pat(b->seed, sector, samples[k]));
    uint32_t len;
    const char *err = request(b, T_IN, sector, rbuf, SECTOR, &len);
    if (err) return err;
    if (len != SECTOR + 1) { why = len; return "used length is not 513"; }
    for (int k = 0; k < 6; k++)
        if (rbuf[samples[k]] != (b->zeros ? 0 : pat(b->seed, sector, samples[k]))) {
            why = sector << 16 | samples[k];
            return "data differs from the image at sector<<16|byte";
        }
    return 0;
}

static uint64_t bys_sector;

/* After an attack on b: b works again after a reset (its read of sector shows the image unchanged), and the
 * bystander, never reset, still answers. */
static void survivors(struct blkdev *b, const char *attack, uint64_t sector) {
    const char *err = blk_up(b);
    if (!err) err = read_check(b, sector);
    step(attack, b == &vic ? "victim_after_reset" : "disk_after_reset", err);
    bys_sector = (bys_sector + 97) % bys.capacity;
    step(attack, "bystander", read_check(&bys, bys_sector));
}

/* Waits for the next used element without the library's bookkeeping (which would follow a looping chain). */
static int wait_raw(struct virtio_dev *d, int q, struct vring_used_elem *e, uint64_t ms) {
    struct vq *v = &d->vq[q];
    uint64_t t0 = lapic_ticks;
    for (;;) {
        cli();
        if (v->used->idx != v->last_used) break;
        if (rd(d->base, R_STATUS) & S_NEEDS_RESET) { sti(); return W_NEEDS_RESET; }
        if (lapic_ticks - t0 > ms / 10 + 1) { sti(); return W_TIMEOUT; }
        sti_hlt();
    }
    sti();
    barrier();
    *e = v->used->ring[v->last_used % v->size];
    v->last_used++;
    return W_USED;
}

static void publish(struct virtio_dev *d, int q, uint16_t head) {
    struct vq *v = &d->vq[q];
    v->avail->ring[v->avail->idx % v->size] = head;
    barrier();
    v->avail->idx++;
    virtio_notify(d, q);
}

static struct blk_hdr ahdr;                /* the attacks' header, status and in-RAM data */
static volatile uint8_t astatus;
static uint8_t abuf[SECTOR];
static const char *how;                    /* how the last attack was refused */
static uint64_t how_ms;

/* Sends n descriptors as chain 0 on b's queue and judges the answer as a refusal. ok_len: a status OK with at most
 * ok_len bytes used is fine too (a device that bounded the request instead). */
static const char *refused(struct blkdev *b, const struct vring_desc *ds, int n, uint32_t ok_len) {
    struct vq *v = &b->d.vq[0];
    for (int k = 0; k < n; k++) v->desc[k] = ds[k];
    astatus = B_NONE;
    uint64_t t0 = lapic_ticks;
    publish(&b->d, 0, 0);
    struct vring_used_elem e;
    int w = wait_raw(&b->d, 0, &e, timeout_ms);
    how_ms = (lapic_ticks - t0) * 10;
    if (w == W_NEEDS_RESET) { how = "DEVICE_NEEDS_RESET"; return 0; }
    how = "no answer";
    if (w == W_TIMEOUT) { why = how_ms; return "no answer and no DEVICE_NEEDS_RESET after ms"; }
    if (e.id != 0) { why = e.id; return "used id is not the head"; }
    if (e.len == 0 && astatus == B_NONE) { how = "length 0"; return 0; }
    if (astatus == B_IOERR && e.len <= 1) { how = "IOERR"; return 0; }
    if (ok_len && astatus == B_OK && e.len <= ok_len) { how = "bounded"; return 0; }
    how = "accepted";
    why = (uint64_t)astatus << 32 | e.len;
    return "accepted: status<<32|len";
}

static void judge(const char *attack, const char *err) {
    printf_lite("INFO %s %s: %s after %lu ms\n", cur_case, attack, how, how_ms);
    step(attack, "refused", err);
}

/* ---- console -------------------------------------------------------------------------------------------------- */

static const char *con_up(int multiport) {
    const char *err = virtio_init(&con, con_base, con_irq, 3, BIT(F_INDIRECT) | (multiport ? BIT(F_MULTIPORT) : 0));
    for (int q = 0; !err && q < (multiport ? 4 : 2); q++) err = virtio_setup_queue_on(&con, q, con_pages[q]);
    if (!err) err = virtio_driver_ok(&con);
    if (err) return err;
    virtio_enable_irq(&con);
    return 0;
}

static char txbuf[128];
/* "HOSTILE <case> console alive\n" on hvc0 (port 0): the host looks for it in the console's output */
static const char *con_alive(void) {
    static const char pre[] = "HOSTILE ", post[] = " console alive\n";
    size_t n = 0;
    for (const char *p = pre; *p; p++) txbuf[n++] = *p;
    for (const char *p = cur_case; *p && n < 96; p++) txbuf[n++] = *p;
    for (const char *p = post; *p; p++) txbuf[n++] = *p;
    struct vbuf b = { txbuf, (uint32_t)n, 0 };
    if (virtio_add(&con, 1, &b, 1) < 0) return "tx queue full";
    virtio_notify(&con, 1);
    struct vring_used_elem e;
    return virtio_wait_used(&con, 1, &e, timeout_ms);
}

static void con_survives(const char *attack) {
    const char *err = con_up(0);
    if (!err) err = con_alive();
    step(attack, "console_after_reset", err);
    bys_sector = (bys_sector + 97) % bys.capacity;
    step(attack, "bystander", read_check(&bys, bys_sector));
}

/* ---- rings_outside_ram ---------------------------------------------------------------------------------------- */

/* Descriptor table, driver (avail) or device (used) ring outside RAM, the other two in RAM. The device may refuse at
 * DRIVER_OK (DEVICE_NEEDS_RESET) or later; it must never serve the request the in-RAM parts offer. */
static void case_rings(void) {
    uint64_t top = ram_top_page();
    const struct where at[] = { { "ram_top", top }, { "straddling_ram_top", top - 16 }, { "mmio_hole", vic.base },
        { "2^63", 1ULL << 63 }, { "2^64-4096", 0xFFFFFFFFFFFFF000ULL }, { "wrapping_to_0", 0xFFFFFFFFFFFFFFF0ULL } };
    static const char *const parts[] = { "desc", "driver", "device" };
    for (int p = 0; p < 3; p++)
        for (int w = 0; w < 6; w++) {
            const char *an = cat(parts[p], at[w].name);
            uint8_t *pg = vic.page;
            memset(pg, 0, 4096);
            struct vring_desc *dt = (struct vring_desc *)pg;
            struct vring_avail *av = (struct vring_avail *)(pg + 256);
            volatile struct vring_used *us = (volatile struct vring_used *)(pg + 2048);
            uint64_t a[3] = { (uintptr_t)dt, (uintptr_t)av, (uintptr_t)us };
            a[p] = at[w].addr;
            const char *err = virtio_init(&vic.d, vic.base, vic.irq, 2, BIT(F_INDIRECT));
            step(an, "init", err);
            if (err) continue;
            wr(vic.base, R_QSEL, 0);
            wr(vic.base, R_QNUM, 16);
            wr64(vic.base, R_QDESC, a[0]);
            wr64(vic.base, R_QDRIVER, a[1]);
            wr64(vic.base, R_QDEVICE, a[2]);
            wr(vic.base, R_QREADY, 1);
            wr(vic.base, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
            uint32_t st = rd(vic.base, R_STATUS);
            ahdr = (struct blk_hdr){ T_IN, 0, ATTACKED_SECTOR };
            astatus = B_NONE;
            dt[0] = (struct vring_desc){ (uintptr_t)&ahdr, sizeof ahdr, D_NEXT, 1 };
            dt[1] = (struct vring_desc){ (uintptr_t)abuf, SECTOR, D_WRITE | D_NEXT, 2 };
            dt[2] = (struct vring_desc){ (uintptr_t)&astatus, 1, D_WRITE, 0 };
            av->ring[0] = 0;
            barrier();
            av->idx = 1;
            wr(vic.base, R_QNOTIFY, 0);
            sleep_ms(50);
            int processed = astatus != B_NONE || us->idx != 0;
            printf_lite("INFO %s %s: status 0x%x%s\n", cur_case, an, st, processed ? ", request served" : "");
            if (processed) why = (uint64_t)astatus << 16 | us->idx;
            step(an, "queue_unused", processed ? "the device used a queue with a part outside RAM: status<<16|used idx" : 0);
            wr(vic.base, R_STATUS, 0);
            why = rd(vic.base, R_STATUS);
            step(an, "reset", why ? "status is not 0 after a reset" : 0);
            survivors(&vic, an, ATTACKED_SECTOR);
        }
}

/* ---- buffers_outside_ram -------------------------------------------------------------------------------------- */

/* Buffers, headers, status bytes and indirect tables outside RAM. An IN would write host memory, an OUT would leak
 * host memory into the image (the read of the sector afterwards shows it; the host also hashes the image). */
static void case_buffers(void) {
    uint64_t top = ram_top_page();
    const struct where at[] = { { "ram_top", top }, { "straddling_ram_top", top - 256 }, { "mmio_hole", vic.base },
        { "2^63", 1ULL << 63 }, { "2^63+1MiB", (1ULL << 63) + 0x100000 }, { "2^64-4096", 0xFFFFFFFFFFFFF000ULL },
        { "wrapping_to_512", 0xFFFFFFFFFFFFFE00ULL } };
    static const char *const kinds[] = { "in_data", "out_data", "get_id_data", "status", "header", "indirect_table" };
    volatile uint8_t *edge = (volatile uint8_t *)(uintptr_t)(top - 256);   /* RAM the straddling buffers cover */
    for (int w = 0; w < 7; w++)
        for (int k = 0; k < 6; k++) {
            const char *an = cat(kinds[k], at[w].name);
            uint64_t a = at[w].addr;
            uint32_t len = w == 6 ? 1024 : SECTOR;              /* the last one wraps past 2^64 */
            const char *err = blk_up(&vic);
            step(an, "up", err);
            if (err) continue;
            for (int i = 0; i < 256; i++) edge[i] = 0x5C;
            ahdr = (struct blk_hdr){ k == 1 ? T_OUT : k == 2 ? T_GET_ID : T_IN, 0, ATTACKED_SECTOR };
            /* header and indirect table straddle the top of RAM at top - 8, wrap to guest address 0 from 2^64 - 8 */
            uint64_t h = (uintptr_t)&ahdr, s = (uintptr_t)&astatus;
            uint64_t small = w == 1 ? top - 8 : w == 6 ? 0xFFFFFFFFFFFFFFF8ULL : a;
            uint32_t slen = 1;
            struct vring_desc c[3];
            int n = 3;
            c[1] = (struct vring_desc){ (uintptr_t)abuf, SECTOR, D_WRITE | D_NEXT, 2 };
            switch (k) {
            case 0: case 2: c[1] = (struct vring_desc){ a, len, D_WRITE | D_NEXT, 2 }; break;
            case 1: c[1] = (struct vring_desc){ a, len, D_NEXT, 2 }; break;
            case 3:                                             /* the buffer's last byte, never RAM; or 2 bytes
                                                                   * from 2^64 - 1, whose last byte would be 0 */
                if (w == 6) { s = 0xFFFFFFFFFFFFFFFFULL; slen = 2; } else s = a + SECTOR - 1;
                break;
            case 4: h = small; break;
            }
            c[0] = (struct vring_desc){ h, sizeof ahdr, D_NEXT, 1 };
            c[2] = (struct vring_desc){ s, slen, D_WRITE, 0 };
            if (k == 5) { c[0] = (struct vring_desc){ small, 48, D_INDIRECT, 0 }; n = 1; }
            judge(an, refused(&vic, c, n, 0));
            int untouched = 1;
            for (int i = 0; i < 256; i += 15) untouched &= edge[i] == 0x5C;
            step(an, "ram_part_untouched", untouched ? 0 : "the device wrote the RAM part of a buffer it refused");
            survivors(&vic, an, ATTACKED_SECTOR);
        }
}

/* ---- chain_loops ---------------------------------------------------------------------------------------------- */

static void case_loops(void) {
    static const char *const names[] = { "self", "two", "through_all_16", "late", "next_out_of_table",
        "indirect_self", "indirect_two", "indirect_65536", "indirect_next_out_of_table" };
    uint64_t h = (uintptr_t)&ahdr, s = (uintptr_t)&astatus, bf = (uintptr_t)abuf, tb = (uintptr_t)TABLE;
    struct vring_desc *it = TABLE;
    for (int k = 0; k < 9; k++) {
        const char *err = blk_up(&vic);
        step(names[k], "up", err);
        if (err) continue;
        ahdr = (struct blk_hdr){ T_IN, 0, ATTACKED_SECTOR };
        struct vring_desc c[16];
        int n = 1;
        switch (k) {
        case 0: c[0] = (struct vring_desc){ h, 16, D_NEXT, 0 }; break;
        case 1: c[0] = (struct vring_desc){ h, 16, D_NEXT, 1 }; c[1] = (struct vring_desc){ s, 1, D_WRITE | D_NEXT, 0 }; n = 2; break;
        case 2:                                                 /* every descriptor of the 16-entry table, back to 0 */
            c[0] = (struct vring_desc){ h, 16, D_NEXT, 1 };
            for (int i = 1; i < 15; i++) c[i] = (struct vring_desc){ bf, SECTOR, D_WRITE | D_NEXT, (uint16_t)(i + 1) };
            c[15] = (struct vring_desc){ s, 1, D_WRITE | D_NEXT, 0 };
            n = 16;
            break;
        case 3:                                                 /* 0 -> 1 -> 2 -> 3 -> 1 ... */
            c[0] = (struct vring_desc){ h, 16, D_NEXT, 1 };
            c[1] = (struct vring_desc){ bf, SECTOR, D_WRITE | D_NEXT, 2 };
            c[2] = (struct vring_desc){ bf, SECTOR, D_WRITE | D_NEXT, 3 };
            c[3] = (struct vring_desc){ s, 1, D_WRITE | D_NEXT, 1 };
            n = 4;
            break;
        case 4: c[0] = (struct vring_desc){ h, 16, D_NEXT, 0xFFFF }; break;
        case 5: it[0] = (struct vring_desc){ h, 16, D_NEXT, 0 }; c[0] = (struct vring_desc){ tb, 16, D_INDIRECT, 0 }; break;
        case 6:
            it[0] = (struct vring_desc){ h, 16, D_NEXT, 1 };
            it[1] = (struct vring_desc){ bf, SECTOR, D_WRITE | D_NEXT, 2 };
            it[2] = (struct vring_desc){ s, 1, D_WRITE | D_NEXT, 1 };
            c[0] = (struct vring_desc){ tb, 48, D_INDIRECT, 0 };
            break;
        case 7:                                                 /* the largest table, its last entry back to 1 */
            it[0] = (struct vring_desc){ h, 16, D_NEXT, 1 };
            for (uint32_t i = 1; i < TABLE_N - 1; i++) it[i] = (struct vring_desc){ bf, SECTOR, D_WRITE | D_NEXT, (uint16_t)(i + 1) };
            it[TABLE_N - 1] = (struct vring_desc){ s, 1, D_WRITE | D_NEXT, 1 };
            c[0] = (struct vring_desc){ tb, TABLE_N * 16, D_INDIRECT, 0 };
            break;
        case 8:
            it[0] = (struct vring_desc){ h, 16, D_NEXT, 1 };
            it[1] = (struct vring_desc){ bf, SECTOR, D_WRITE | D_NEXT, 7 };
            it[2] = (struct vring_desc){ s, 1, D_WRITE, 0 };
            c[0] = (struct vring_desc){ tb, 48, D_INDIRECT, 0 };
            break;
        }
        judge(names[k], refused(&vic, c, n, 0));
        survivors(&vic, names[k], ATTACKED_SECTOR);
    }
}

/* ---- chain_terabytes ------------------------------------------------------------------------------------------ */

/* A 65536-entry table: header, 65534 x 16 MiB all on BIG_BUF (~1 TiB), status. */
static void big_chain(uint16_t data_flags) {
    struct vring_desc *t = TABLE;
    t[0] = (struct vring_desc){ (uintptr_t)&ahdr, sizeof ahdr, D_NEXT, 1 };
    for (uint32_t i = 1; i < TABLE_N - 1; i++) t[i] = (struct vring_desc){ BIG_BUF, BIG_LEN, data_flags | D_NEXT, (uint16_t)(i + 1) };
    t[TABLE_N - 1] = (struct vring_desc){ (uintptr_t)&astatus, 1, D_WRITE, 0 };
}

static void case_terabytes(void) {
    struct blkdev *devs[2] = { &vic, big.base ? &big : 0 };
    static const char *const kinds[] = { "in", "out", "get_id" };
    if (!big.base) printf_lite("INFO %s: no hostile-big disk, the victim's capacity bounds an IN\n", cur_case);
    for (int d = 0; d < 2 && devs[d]; d++)
        for (int k = 0; k < 3; k++) {
            struct blkdev *b = devs[d];
            const char *an = cat(kinds[k], b == &vic ? "victim" : "big");
            const char *err = blk_up(b);
            step(an, "up", err);
            if (err) continue;
            ahdr = (struct blk_hdr){ k == 0 ? T_IN : k == 1 ? T_OUT : T_GET_ID, 0, 0 };
            big_chain(k == 1 ? 0 : D_WRITE);
            struct vring_desc c = { (uintptr_t)TABLE, TABLE_N * 16, D_INDIRECT, 0 };
            judge(an, refused(b, &c, 1, k == 2 ? ID_BYTES + 1 : 0));   /* GET_ID may fill its 20 bytes */
            survivors(b, an, 0);
        }
}

/* ---- console_tx_terabytes ------------------------------------------------------------------------------------- */

static int have_console(void) {
    if (!con_base) step("console", "present", "no virtio-console on the cmdline");
    return con_base != 0;
}

/* hvc0 output of 65536 x 16 MiB on BIG_BUF: a device that copies it out never comes back */
static void case_console_tx(void) {
    if (!have_console()) return;
    const char *err = con_up(0);
    step("tx_1TiB", "up", err);
    if (err) return;
    struct vring_desc *t = TABLE;
    for (uint32_t i = 0; i < TABLE_N; i++)
        t[i] = (struct vring_desc){ BIG_BUF, BIG_LEN, i + 1 < TABLE_N ? D_NEXT : 0, (uint16_t)(i + 1) };
    con.vq[1].desc[0] = (struct vring_desc){ (uintptr_t)TABLE, TABLE_N * 16, D_INDIRECT, 0 };
    uint64_t t0 = lapic_ticks;
    publish(&con, 1, 0);
    struct vring_used_elem e;
    int w = wait_raw(&con, 1, &e, timeout_ms);
    uint64_t ms = (lapic_ticks - t0) * 10;
    printf_lite("INFO %s tx_1TiB: %s after %lu ms\n", cur_case,
                w == W_USED ? (e.len ? "back, length not 0" : "back") : w == W_NEEDS_RESET ? "DEVICE_NEEDS_RESET" : "no answer", ms);
    why = ms;
    step("tx_1TiB", "refused_or_bounded", w == W_TIMEOUT ? "no answer and no DEVICE_NEEDS_RESET after ms" : 0);
    con_survives("tx_1TiB");
}

/* ---- console_ctrl_flood --------------------------------------------------------------------------------------- */

struct ctrl { uint32_t id; uint16_t event, value; };
static struct ctrl cmsg[VQ_SIZE];
static uint8_t crx[VQ_SIZE][64];

/* DEVICE_READY and PORT_READY(0) over and over, no control-rx buffer offered: each one makes the device queue
 * answers for the driver. Then the backlog is taken and counted: it must be bounded, not one answer per message. */
static void case_flood(void) {
    uint64_t n = cmdline_u64("jkrun.hostile.flood=", 20000);
    if (!have_console()) return;
    const char *err = con_up(1);
    step("flood", "up", err);
    if (err) return;
    if (!(con.driver_features & BIT(F_MULTIPORT))) { step("flood", "multiport", "the console does not offer MULTIPORT"); return; }
    struct vq *tx = &con.vq[3];
    uint64_t taken = 0, t0 = lapic_ticks;
    int stop = 0;                               /* 1: the device stopped taking them, 2: DEVICE_NEEDS_RESET */
    while (taken < n && !stop) {
        uint16_t before = tx->used->idx;
        for (int k = 0; k < tx->size; k++) {
            cmsg[k] = (taken + k) & 1 ? (struct ctrl){ 0, C_PORT_READY, 1 } : (struct ctrl){ 0, C_DEVICE_READY, 1 };
            tx->desc[k] = (struct vring_desc){ (uintptr_t)&cmsg[k], sizeof cmsg[k], 0, 0 };
            tx->avail->ring[tx->avail->idx % tx->size] = (uint16_t)k;
            barrier();
            tx->avail->idx++;
        }
        virtio_notify(&con, 3);
        uint64_t t1 = lapic_ticks;
        for (;;) {                              /* every descriptor back before it is reused */
            cli();
            if (tx->used->idx == tx->avail->idx) break;
            if (rd(con_base, R_STATUS) & S_NEEDS_RESET) { stop = 2; break; }
            if (lapic_ticks - t1 > 100) { stop = 1; break; }
            sti_hlt();
        }
        sti();
        taken += (uint16_t)(tx->used->idx - before);
    }
    uint64_t ms = (lapic_ticks - t0) * 10;
    printf_lite("INFO %s: the device took %lu control messages in %lu ms%s\n", cur_case, taken, ms,
                stop == 1 ? ", then stopped taking them" : stop == 2 ? ", then set DEVICE_NEEDS_RESET" : "");
    if (rd(con_base, R_STATUS) & S_NEEDS_RESET) { con_survives("flood"); return; }
    step("flood", "hvc0_during_backlog", con_alive());
    struct vq *rx = &con.vq[2];
    for (int k = 0; k < rx->size; k++) {
        rx->desc[k] = (struct vring_desc){ (uintptr_t)crx[k], sizeof crx[k], D_WRITE, 0 };
        rx->avail->ring[rx->avail->idx % rx->size] = (uint16_t)k;
        barrier();
        rx->avail->idx++;
    }
    virtio_notify(&con, 2);
    uint64_t got = 0;
    struct vring_used_elem e;
    while (got <= 4 * taken + 64 && wait_raw(&con, 2, &e, 300) == W_USED) {
        for (;;) {                              /* give each buffer back, notify once per batch */
            got++;
            rx->avail->ring[rx->avail->idx % rx->size] = (uint16_t)(e.id % rx->size);
            barrier();
            rx->avail->idx++;
            if (rx->used->idx == rx->last_used) break;
            e = rx->used->ring[rx->last_used % rx->size];
            rx->last_used++;
        }
        virtio_notify(&con, 2);
    }
    printf_lite("INFO %s: the device then delivered %lu control messages\n", cur_case, got);
    /* unbounded: about two answers per message; a device that pushed back has bounded it by then */
    why = got;
    step("flood", "backlog_bounded", !stop && got > taken / 4 ? "the device queued answers without bound: delivered" : 0);
    con_survives("flood");
}

/* ---- reset_inflight ------------------------------------------------------------------------------------------- */

static struct blk_hdr ri_hdr[VQ_SIZE];
static volatile uint8_t ri_st[VQ_SIZE];
static uint8_t ctx[VQ_SIZE][64];
#define RI_BYTES (256u << 10)

/* After a reset the old rings belong to the driver again: nothing may land there. Poisons what the device could
 * still write, waits 50 ms, and checks. */
static const char *quiet_after_reset(struct vq *v, volatile uint8_t *st, int nst, uint8_t *data, uint8_t seed) {
    uint16_t u = v->used->idx;
    for (int k = 0; k < nst; k++) {                   /* byte 0 of each sector stands for its buffer */
        st[k] = B_NONE;
        for (uint32_t s = 0; data && s < RI_BYTES / SECTOR; s++) data[k * RI_BYTES + s * SECTOR] = (uint8_t)~pat(seed, k * (RI_BYTES / SECTOR) + s, 0);
    }
    sleep_ms(50);
    if (v->used->idx != u) { why = (uint16_t)(v->used->idx - u); return "the used ring moved after the reset"; }
    for (int k = 0; k < nst; k++) {
        if (st[k] != B_NONE) { why = k; return "a status byte was written after the reset"; }
        for (uint32_t s = 0; data && s < RI_BYTES / SECTOR; s++)
            if (data[k * RI_BYTES + s * SECTOR] != (uint8_t)~pat(seed, k * (RI_BYTES / SECTOR) + s, 0)) {
                why = k; return "a data buffer was written after the reset";
            }
    }
    return 0;
}

static void case_reset_inflight(void) {
    uint8_t *data = (uint8_t *)BIG_BUF;
    for (int r = 0; r < 16; r++) {
        const char *err = blk_up(&vic);
        step("blk", "up", err);
        if (err) continue;
        struct vq *v = &vic.d.vq[0];
        struct vring_desc *t = TABLE;
        for (int k = 0; k < v->size; k++) {              /* 16 INs of 256 KiB, each through its own table */
            ri_hdr[k] = (struct blk_hdr){ T_IN, 0, (uint64_t)k * (RI_BYTES / SECTOR) };
            ri_st[k] = B_NONE;
            t[3 * k] = (struct vring_desc){ (uintptr_t)&ri_hdr[k], sizeof ri_hdr[k], D_NEXT, 1 };
            t[3 * k + 1] = (struct vring_desc){ (uintptr_t)(data + k * RI_BYTES), RI_BYTES, D_WRITE | D_NEXT, 2 };
            t[3 * k + 2] = (struct vring_desc){ (uintptr_t)&ri_st[k], 1, D_WRITE, 0 };
            v->desc[k] = (struct vring_desc){ (uintptr_t)&t[3 * k], 48, D_INDIRECT, 0 };
            v->avail->ring[k] = (uint16_t)k;
        }
        barrier();
        v->avail->idx = (uint16_t)v->size;
        virtio_notify(&vic.d, 0);
        delay_loops((uint64_t)r * r * 32);               /* from "none started" to "most done" */
        wr(vic.base, R_STATUS, 0);
        why = rd(vic.base, R_STATUS);
        step("blk", "reset", why ? "status is not 0 after a reset" : 0);
        int done = 0, ok = 1;
        for (int k = 0; k < v->size; k++) {               /* what completed before the reset is right */
            if (ri_st[k] != B_OK) continue;
            done++;
            for (uint32_t s = 0; s < RI_BYTES / SECTOR && ok; s++)
                if (data[k * RI_BYTES + s * SECTOR] != pat(vic.seed, k * (RI_BYTES / SECTOR) + s, 0)) { ok = 0; why = k; }
        }
        step("blk", "completed_data", ok ? 0 : "a request completed before the reset has wrong data");
        printf_lite("INFO %s blk round %d: %d of %d requests completed before the reset\n", cur_case, r, done, v->size);
        step("blk", "quiet_after_reset", quiet_after_reset(v, ri_st, v->size, data, vic.seed));
        survivors(&vic, "blk", (uint64_t)r * 131);
    }
    if (!have_console()) return;
    for (int r = 0; r < 8; r++) {
        const char *err = con_up(0);
        step("console", "up", err);
        if (err) continue;
        struct vq *v = &con.vq[1];
        for (int k = 0; k < v->size; k++) {
            memset(ctx[k], '.', sizeof ctx[k] - 1);
            ctx[k][sizeof ctx[k] - 1] = '\n';
            v->desc[k] = (struct vring_desc){ (uintptr_t)ctx[k], sizeof ctx[k], 0, 0 };
            v->avail->ring[k] = (uint16_t)k;
        }
        barrier();
        v->avail->idx = (uint16_t)v->size;
        virtio_notify(&con, 1);
        delay_loops((uint64_t)r * r * 32);
        wr(con_base, R_STATUS, 0);
        why = rd(con_base, R_STATUS);
        step("console", "reset", why ? "status is not 0 after a reset" : 0);
        step("console", "quiet_after_reset", quiet_after_reset(v, 0, 0, 0, 0));
    }
    con_survives("console");
}

/* ---- reset_long_chain ----------------------------------------------------------------------------------------- */

/* A legal but long hvc0 chain (65536 x 65535 bytes, just under 2^32), reset 20 ms after it was offered: the reset
 * must not hold the vCPU until the device has copied 4 GiB, and nothing may land in the old rings after it. */
static void case_reset_long(void) {
    uint64_t max_ms = cmdline_u64("jkrun.hostile.reset_ms=", 1000);
    if (!have_console()) return;
    const char *err = con_up(0);
    step("tx_4GiB", "up", err);
    if (err) return;
    struct vring_desc *t = TABLE;
    for (uint32_t i = 0; i < TABLE_N; i++)
        t[i] = (struct vring_desc){ BIG_BUF, 65535, i + 1 < TABLE_N ? D_NEXT : 0, (uint16_t)(i + 1) };
    struct vq *v = &con.vq[1];
    v->desc[0] = (struct vring_desc){ (uintptr_t)TABLE, TABLE_N * 16, D_INDIRECT, 0 };
    publish(&con, 1, 0);
    sleep_ms(20);
    uint16_t u = v->used->idx;
    uint64_t c0 = rdtsc();
    wr(con_base, R_STATUS, 0);
    uint64_t ms = (rdtsc() - c0) / tsc_per_ms;
    why = rd(con_base, R_STATUS);
    step("tx_4GiB", "reset", why ? "status is not 0 after a reset" : 0);
    printf_lite("INFO %s: the reset took %lu ms%s\n", cur_case, ms, u ? " (the chain was done before it)" : "");
    why = ms;
    step("tx_4GiB", "reset_prompt", ms > max_ms ? "the reset held the vCPU for ms" : 0);
    step("tx_4GiB", "quiet_after_reset", quiet_after_reset(v, 0, 0, 0, 0));
    con_survives("tx_4GiB");
}

/* ---- mmio_hammer ---------------------------------------------------------------------------------------------- */

static void mmio_access(uintptr_t a, int width, int write, uint64_t v) {
    switch (width) {
    case 1: if (write) *(volatile uint8_t *)a = (uint8_t)v; else (void)*(volatile uint8_t *)a; break;
    case 2: if (write) *(volatile uint16_t *)a = (uint16_t)v; else (void)*(volatile uint16_t *)a; break;
    case 4: if (write) *(volatile uint32_t *)a = (uint32_t)v; else (void)*(volatile uint32_t *)a; break;
    default: if (write) *(volatile uint64_t *)a = v; else (void)*(volatile uint64_t *)a; break;
    }
}

/* Every offset of the 4 KiB window at every width (aligned or not, never past the window); writes skip only the
 * 32-bit Status register, which is attacked on its own. */
static void sweep(uintptr_t base, int write, uint32_t seed) {
    for (int w = 1; w <= 8; w <<= 1)
        for (uint32_t off = 0; off + (uint32_t)w <= 0x1000; off++) {
            if (write && w == 4 && off == R_STATUS) continue;
            uint32_t v32 = seed == 0xFFFFFFFFu ? seed : off * 0x01010101u ^ seed;
            mmio_access(base + off, w, write, (uint64_t)v32 << 32 | v32);
        }
}

static const char *identity(uintptr_t base) {
    if (rd(base, R_MAGIC) != 0x74726976) { why = rd(base, R_MAGIC); return "magic changed"; }
    if (rd(base, R_VERSION) != 2) { why = rd(base, R_VERSION); return "version changed"; }
    if (rd(base, R_DEVICE_ID) != 2) { why = rd(base, R_DEVICE_ID); return "device id changed"; }
    return 0;
}

static void case_hammer(void) {
    uintptr_t b = vic.base;
    wr(b, R_STATUS, 0);
    sweep(b, 0, 0);
    step("reads_after_reset", "identity", identity(b));
    sweep(b, 1, 0xFFFFFFFFu);
    step("writes_after_reset", "identity", identity(b));
    survivors(&vic, "writes_after_reset", 7);

    const char *err = virtio_init(&vic.d, b, vic.irq, 2, BIT(F_INDIRECT));
    step("writes_at_features_ok", "init", err);
    sweep(b, 1, 0xA5A5A5A5u);
    sweep(b, 0, 0);
    step("writes_at_features_ok", "identity", identity(b));
    survivors(&vic, "writes_at_features_ok", 7);

    err = blk_up(&vic);
    step("writes_at_driver_ok", "up", err);
    sweep(b, 1, 0x5A5A5A5Au);
    step("writes_at_driver_ok", "identity", identity(b));
    /* junk writes after DRIVER_OK change nothing the driver set up: the live queue still serves, unless the device
     * said it needs a reset */
    uint32_t st = rd(b, R_STATUS);
    printf_lite("INFO %s writes_at_driver_ok: status 0x%x afterwards\n", cur_case, st);
    if (!err && !(st & S_NEEDS_RESET)) step("writes_at_driver_ok", "live_queue", read_check(&vic, 7));
    survivors(&vic, "writes_at_driver_ok", 7);

    static const uint32_t junk[] = { 0xFF, 0x80, 0x40, 0x04, 0x0F, 0x7F, 0x10F, 0x8000000F, 0xFFFFFFFF };
    for (unsigned i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        err = virtio_init(&vic.d, b, vic.irq, 2, BIT(F_INDIRECT));
        step("junk_status", "init", err);
        wr(b, R_STATUS, junk[i]);
        (void)rd(b, R_STATUS);
        wr(b, R_STATUS, 0);
        why = junk[i];
        step("junk_status", "reset", rd(b, R_STATUS) ? "status is not 0 after a reset, junk was" : 0);
    }
    survivors(&vic, "junk_status", 7);
}

/* ---- queue_regs_oob ------------------------------------------------------------------------------------------- */

static void case_queue_regs(void) {
    uintptr_t b = vic.base;
    static const uint32_t sels[] = { 1, 2, 8, 255, 256, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF };
    const char *err = virtio_init(&vic.d, b, vic.irq, 2, BIT(F_INDIRECT));
    step("select", "init", err);
    for (unsigned i = 0; i < sizeof sels / sizeof sels[0]; i++) {
        why = sels[i];
        wr(b, R_QSEL, sels[i]);
        step("select", "num_max", rd(b, R_QNUM_MAX) ? "QueueNumMax is not 0 for a queue that does not exist" : 0);
        why = sels[i];
        step("select", "not_ready", rd(b, R_QREADY) ? "QueueReady reads 1 for a queue that does not exist" : 0);
        wr(b, R_QNUM, 16);
        wr64(b, R_QDESC, (uintptr_t)vic.page);
        wr64(b, R_QDRIVER, (uintptr_t)vic.page + 256);
        wr64(b, R_QDEVICE, (uintptr_t)vic.page + 2048);
        wr(b, R_QREADY, 1);
        why = sels[i];
        step("select", "stays_unready", rd(b, R_QREADY) ? "a queue that does not exist became ready" : 0);
    }
    /* queue 0 after all that: set up as usual, notified for queues that do not exist, and still serving */
    if (!err) err = virtio_setup_queue_on(&vic.d, 0, vic.page);
    if (!err) err = virtio_driver_ok(&vic.d);
    step("select", "queue_0_up", err);
    if (!err) {
        virtio_enable_irq(&vic.d);
        static const uint32_t nq[] = { 1, 2, 255, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF };
        for (unsigned i = 0; i < sizeof nq / sizeof nq[0]; i++) wr(b, R_QNOTIFY, nq[i]);
        uint32_t st = rd(b, R_STATUS);
        printf_lite("INFO %s select: status 0x%x after notifying queues that do not exist\n", cur_case, st);
        if (!(st & S_NEEDS_RESET)) step("select", "queue_0_serves", read_check(&vic, 9));
    }
    survivors(&vic, "select", 9);

    /* queue sizes the device cannot take; it may refuse at DRIVER_OK, and must never serve a queue it refused */
    static const uint32_t sizes[] = { 0, 3, 17, 512, 0x10000, 0x80000000, 0xFFFFFFFF };
    static const char *const size_names[] = { "0", "3", "17", "512", "65536", "2^31", "2^32-1" };
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const char *an = cat("size", size_names[i]);
        uint8_t *pg = vic.page;
        memset(pg, 0, 4096);
        struct vring_desc *dt = (struct vring_desc *)pg;
        struct vring_avail *av = (struct vring_avail *)(pg + 256);
        volatile struct vring_used *us = (volatile struct vring_used *)(pg + 2048);
        err = virtio_init(&vic.d, b, vic.irq, 2, BIT(F_INDIRECT));
        step(an, "init", err);
        if (err) continue;
        wr(b, R_QSEL, 0);
        wr(b, R_QNUM, sizes[i]);
        wr64(b, R_QDESC, (uintptr_t)dt);
        wr64(b, R_QDRIVER, (uintptr_t)av);
        wr64(b, R_QDEVICE, (uintptr_t)us);
        wr(b, R_QREADY, 1);
        wr(b, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
        uint32_t st = rd(b, R_STATUS);
        int refused_q = (st & (S_NEEDS_RESET | S_FAILED)) || !(st & S_DRIVER_OK);
        ahdr = (struct blk_hdr){ T_IN, 0, ATTACKED_SECTOR };
        astatus = B_NONE;
        dt[0] = (struct vring_desc){ (uintptr_t)&ahdr, sizeof ahdr, D_NEXT, 1 };
        dt[1] = (struct vring_desc){ (uintptr_t)abuf, SECTOR, D_WRITE | D_NEXT, 2 };
        dt[2] = (struct vring_desc){ (uintptr_t)&astatus, 1, D_WRITE, 0 };
        av->ring[0] = 0;
        barrier();
        av->idx = 1;
        wr(b, R_QNOTIFY, 0);
        sleep_ms(50);
        int served = astatus != B_NONE || us->idx != 0;
        printf_lite("INFO %s %s: status 0x%x%s\n", cur_case, an, st, served ? ", request served" : "");
        why = st;
        step(an, "refused_queue_unused", refused_q && served ? "the device served a queue it refused, status" : 0);
        wr(b, R_STATUS, 0);
        survivors(&vic, an, ATTACKED_SECTOR);
    }
}

/* ---- main ----------------------------------------------------------------------------------------------------- */

static const struct { const char *name; void (*run)(void); } cases[] = {
    { "rings_outside_ram", case_rings }, { "buffers_outside_ram", case_buffers }, { "chain_loops", case_loops },
    { "chain_terabytes", case_terabytes }, { "mmio_hammer", case_hammer }, { "queue_regs_oob", case_queue_regs },
    { "reset_inflight", case_reset_inflight }, { "console_ctrl_flood", case_flood },
    { "console_tx_terabytes", case_console_tx }, { "reset_long_chain", case_reset_long },
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

/* whether the comma-separated list names `name` (or is "all") */
static int listed(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *q = p;
        while (*q && *q != ',') q++;
        if (((size_t)(q - p) == n && !strncmp(p, name, n)) || ((size_t)(q - p) == 3 && !strncmp(p, "all", 3))) return 1;
        p = *q ? q + 1 : q;
    }
    return 0;
}

static void calibrate_tsc(void) {
    uint64_t t = lapic_ticks;
    while (lapic_ticks == t) sti_hlt();
    uint64_t c0 = rdtsc();
    t = lapic_ticks;
    while (lapic_ticks - t < 10) sti_hlt();
    tsc_per_ms = (rdtsc() - c0) / 100;
    if (!tsc_per_ms) tsc_per_ms = 1;
}

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    paging_init();
    idt_init();
    timeout_ms = cmdline_u64("jkrun.test.timeout_ms=", 5000);
    vic.seed = (uint8_t)cmdline_u64("jkrun.hostile.victim_seed=", 0x5A);
    bys.seed = (uint8_t)cmdline_u64("jkrun.hostile.bystander_seed=", 0x3C);
    if (ram_top() < RAM_NEEDED) fail("needs 64 MiB of RAM");

    for (int k = 0;; k++) {                 /* the disks by serial, the console by id */
        uintptr_t base; int irq;
        if (virtio_find(k, &base, &irq)) break;
        if (readl(base + R_MAGIC) != 0x74726976) continue;
        uint32_t id = readl(base + R_DEVICE_ID);
        if (id == 3 && !con_base) { con_base = base; con_irq = irq; }
        if (id != 2) continue;
        probe.base = base; probe.irq = irq;
        memset(idbuf, 0, sizeof idbuf);
        uint32_t len;
        const char *err = blk_up(&probe);
        if (!err) err = request(&probe, T_GET_ID, 0, idbuf, ID_BYTES, &len);
        wr(base, R_STATUS, 0);
        if (err) { printf_lite("FAIL: disk at 0x%lx: %s\n", (uint64_t)base, err); return 1; }
        struct blkdev *all[3] = { &vic, &bys, &big }, *b = 0;
        for (int i = 0; i < 3; i++)
            if (!strncmp((const char *)idbuf, all[i]->id, ID_BYTES)) b = all[i];
        if (!b) { printf_lite("INFO disk %s at 0x%lx ignored\n", (const char *)idbuf, (uint64_t)base); continue; }
        b->base = base; b->irq = irq;
    }
    if (!vic.base || !bys.base) fail("needs the disks hostile-victim and hostile-bystander");
    const char *err = blk_up(&vic);
    if (!err) err = blk_up(&bys);
    if (!err && big.base) err = blk_up(&big);
    if (!err) err = read_check(&vic, 0);
    if (!err) err = read_check(&vic, vic.capacity - 1);
    if (!err) err = read_check(&bys, 0);
    if (err) { printf_lite("FAIL: before any attack: %s (0x%lx)\n", err, why); return 1; }
    printf_lite("VICTIM 0x%lx irq %d sectors %lu\n", (uint64_t)vic.base, vic.irq, vic.capacity);
    printf_lite("BYSTANDER 0x%lx irq %d sectors %lu\n", (uint64_t)bys.base, bys.irq, bys.capacity);
    if (big.base) printf_lite("BIG 0x%lx irq %d sectors %lu\n", (uint64_t)big.base, big.irq, big.capacity);
    if (con_base) printf_lite("CONSOLE 0x%lx irq %d\n", (uint64_t)con_base, con_irq);
    calibrate_tsc();
    printf_lite("RAM 0x%lx TSC_PER_MS %lu\n", ram_top(), tsc_per_ms);

    char list[256] = "all";
    cmdline_get("jkrun.hostile.case=", list, sizeof list);
    int ran = 0, bad = 0;
    for (const char *p = list; *p;) {       /* names that are no case */
        const char *q = p;
        while (*q && *q != ',') q++;
        int known = (q - p == 3 && !strncmp(p, "all", 3));
        for (int i = 0; i < NCASES && !known; i++)
            known = strlen(cases[i].name) == (size_t)(q - p) && !strncmp(p, cases[i].name, (size_t)(q - p));
        if (!known) { printf_lite("FAIL: unknown case in %s\n", list); return 1; }
        p = *q ? q + 1 : q;
    }
    for (int i = 0; i < NCASES; i++) {
        if (!listed(list, cases[i].name)) continue;
        cur_case = cases[i].name;
        case_checks = case_failed = 0;
        uint64_t t0 = lapic_ticks;
        cases[i].run();
        uint64_t ms = (lapic_ticks - t0) * 10;
        if (case_failed) printf_lite("CASE %s FAIL %d of %d checks %lu ms\n", cur_case, case_failed, case_checks, ms);
        else printf_lite("CASE %s ok %d checks %lu ms\n", cur_case, case_checks, ms);
        ran++;
        bad += case_failed != 0;
    }
    if (bad) printf_lite("HOSTILE FAIL %d of %d\n", bad, ran);
    else printf_lite("HOSTILE ok %d\n", ran);
    return bad ? 1 : 0;
}
