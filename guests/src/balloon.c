/* balloon: a virtio-balloon (id 5) driver test guest (virtio 1.2 §5.5). Finds the first virtio_mmio.device= announcing
 * id 5, checks five queues and the initial config space, negotiates STATS_VQ, FREE_PAGE_HINT and PAGE_REPORTING (so
 * the queues are inflateq 0, deflateq 1, statsq 2, free_page_vq 3, reporting_vq 4), and then, in steps the host paces
 * by setting num_pages (each step waits for the config-change interrupt and the next target):
 *   touch        writes every 4 KiB page of [32 MiB, 64 MiB) and a canary region [16 MiB, 16 MiB + 64 KiB);
 *                prints "TOUCHED" and waits for target 1
 *   report       reports [32 MiB, 64 MiB) free on reporting_vq (one chain of 16 x 2 MiB): used 0, and the pages read
 *                as zeros afterwards (the host discarded them); prints "REPORTED" and waits for target 2
 *   hostile      report chains the device must ignore: past RAM, in the MMIO hole, wrapping past 2^64, zero length,
 *                straddling the end of RAM; inflate PFNs past RAM, in the hole, 0xFFFFFFFF: each chain comes back with
 *                0 and the canary is intact
 *   inflate      touches [32 MiB, 40 MiB) again, inflates its 2048 PFNs (8 chains of 256, as Linux sends them) and
 *                writes actual = 2048: the pages read as zeros; deflates them (actual = 0) and they are usable again
 *   stats        posts a stats buffer (MEMFREE 0x1234, MEMTOT ram_top) at the start: not returned until the host asks;
 *                prints "INFLATED", waits for the host to return it, refills it (MEMFREE 0x5678), prints
 *                "STATS_REFILLED" and waits for target 3
 *   hint         a chain on free_page_vq comes back with 0; free_page_hint_cmd_id stays 0 (STOP)
 * cmdline: jkrun.test.timeout_ms=<ms> (20000) for each wait
 * Prints "CHECK <name> ok|FAIL <why> <value>", and "BALLOON ok <checks>" or "BALLOON FAIL <n>"; exit 0 / 1. */
#include "guest.h"

#define DEVICE_BALLOON 5
#define BIT(b) (1ULL << (b))
#define F_STATS_VQ 1
#define F_DEFLATE_ON_OOM 2
#define F_FREE_PAGE_HINT 3
#define F_REPORTING 5
#define QI 0
#define QD 1
#define QS 2
#define QH 3
#define QR 4
#define PAGE 4096ULL
#define MIB (1ULL << 20)
#define TOUCH_START (32 * MIB)
#define TOUCH_END (64 * MIB)
#define CANARY ((volatile uint64_t *)(16 * MIB))
#define CANARY_BYTES (64u << 10)
#define NPFN 256
#define CFG 0x100
#define TICK_MS 10

static struct virtio_dev dev;
static uint64_t timeout_ms;
static uintptr_t base;
static int failures, checks;
static uint32_t pfns[8][NPFN] __attribute__((aligned(64)));
static uint32_t bad_pfns[8] __attribute__((aligned(64)));
struct stat_entry { uint16_t tag; uint64_t val; } __attribute__((packed));
static struct stat_entry stats[2] __attribute__((aligned(64)));
static uint8_t hint_buf[64];

static void check(const char *name, int ok, const char *why, uint64_t v) {
    checks++;
    if (ok) printf_lite("CHECK %s ok\n", name);
    else { printf_lite("CHECK %s FAIL %s 0x%lx\n", name, why, v); failures++; }
}

static void canary_fill(void) {
    for (uint32_t k = 0; k < CANARY_BYTES / 8; k++) CANARY[k] = 0xC0FFEE0000000000ULL | k;
}

static int canary_ok(void) {
    for (uint32_t k = 0; k < CANARY_BYTES / 8; k++) if (CANARY[k] != (0xC0FFEE0000000000ULL | k)) return 0;
    return 1;
}

/* Writes two words into every page of [a, b). */
static void touch(uint64_t a, uint64_t b) {
    for (uint64_t p = a; p < b; p += PAGE) {
        *(volatile uint64_t *)p = p | 1;
        *(volatile uint64_t *)(p + 2048) = ~p;
    }
}

/* Pages of [a, b) whose two words are not zero. */
static uint64_t nonzero_pages(uint64_t a, uint64_t b) {
    uint64_t n = 0;
    for (uint64_t p = a; p < b; p += PAGE) n += *(volatile uint64_t *)p != 0 || *(volatile uint64_t *)(p + 2048) != 0;
    return n;
}

/* Pages of [a, b) that still hold what touch() wrote. */
static uint64_t touched_pages(uint64_t a, uint64_t b) {
    uint64_t n = 0;
    for (uint64_t p = a; p < b; p += PAGE) n += *(volatile uint64_t *)p == (p | 1) && *(volatile uint64_t *)(p + 2048) == ~p;
    return n;
}

/* Waits for num_pages == want (the host sets it and raises a config interrupt). */
static int wait_target(uint32_t want) {
    uint64_t t0 = lapic_ticks, ticks = timeout_ms / TICK_MS + 1;
    for (;;) {
        cli();
        if (readl(base + CFG) == want) break;
        if (lapic_ticks - t0 > ticks) { sti(); return 0; }
        sti_hlt();
    }
    sti();
    /* the host writes num_pages, then raises the interrupt: polling may see the value first; the IRQ must follow */
    uint64_t t1 = lapic_ticks;
    while (!(dev.isr_bits & 2) && lapic_ticks - t1 < 100) sti_hlt();
    return 1;
}

static int64_t xfer(const char *name, int q, const struct vbuf *b, int n) {
    int head = virtio_add(&dev, q, b, n);
    if (head < 0) { check(name, 0, "queue full, descriptors", n); return -1; }
    virtio_notify(&dev, q);
    struct vring_used_elem e;
    const char *err = virtio_wait_used(&dev, q, &e, timeout_ms);
    if (err) { printf_lite("CHECK %s FAIL %s\n", name, err); failures++; checks++; return -1; }
    if (e.id != (uint32_t)head) { check(name, 0, "used id is not the head", e.id); return -1; }
    return e.len;
}

/* A chain of one device-writable range (as Linux reports free pages). */
static int64_t report_one(const char *name, uint64_t addr, uint32_t len) {
    struct vbuf b = { (void *)(uintptr_t)addr, len, 1 };
    return xfer(name, QR, &b, 1);
}

static void report(void) {
    struct vbuf b[16];
    for (int k = 0; k < 16; k++) b[k] = (struct vbuf){ (void *)(uintptr_t)(TOUCH_START + k * 2 * MIB), 2 * MIB, 1 };
    int64_t len = xfer("report", QR, b, 16);
    if (len < 0) return;
    check("report", len == 0, "used length", (uint64_t)len);
    uint64_t left = nonzero_pages(TOUCH_START, TOUCH_END);
    check("reported_pages_discarded", left == 0, "pages not zero after the report", left);
}

static void hostile(void) {
    uint64_t top = ram_top();
    struct { const char *name; uint64_t addr; uint32_t len; } r[] = {
        { "report_past_ram", top, 2 * MIB },
        { "report_mmio_hole", 0xD0000000ULL, 64 << 10 },
        { "report_wrapping", 0xFFFFFFFFFFFFF000ULL, 0x2000 },
        { "report_zero_length", 16 * MIB, 0 },
        { "report_straddling_ram_end", top - PAGE, 2 * PAGE },
    };
    for (unsigned k = 0; k < sizeof r / sizeof r[0]; k++) {
        int64_t len = report_one(r[k].name, r[k].addr, r[k].len);
        if (len >= 0) check(r[k].name, len == 0, "used length", (uint64_t)len);
    }
    bad_pfns[0] = (uint32_t)(top / PAGE);
    bad_pfns[1] = (uint32_t)(top / PAGE) + 1000;
    bad_pfns[2] = 0xD0000;           /* the virtio-mmio window */
    bad_pfns[3] = 0xFEE00;           /* the LAPIC */
    bad_pfns[4] = 0xFFFFFFFFu;
    bad_pfns[5] = 0x80000000u;
    struct vbuf b = { bad_pfns, 6 * 4 + 3, 0 };   /* and a torn PFN at the end */
    int64_t len = xfer("inflate_hostile_pfns", QI, &b, 1);
    if (len >= 0) check("inflate_hostile_pfns", len == 0, "used length", (uint64_t)len);
    len = xfer("deflate_hostile_pfns", QD, &b, 1);
    if (len >= 0) check("deflate_hostile_pfns", len == 0, "used length", (uint64_t)len);
    check("canary_intact", canary_ok(), "the canary changed", 0);
}

static void inflate(void) {
    uint64_t a = TOUCH_START, b = TOUCH_START + 8 * MIB;
    touch(a, b);
    uint64_t t = touched_pages(a, b);
    check("retouched", t == 2048, "pages touched", t);
    for (int c = 0; c < 8; c++)
        for (int k = 0; k < NPFN; k++) pfns[c][k] = (uint32_t)((a >> 12) + c * NPFN + k);
    for (int c = 0; c < 8; c++) {
        struct vbuf v = { pfns[c], sizeof pfns[c], 0 };
        int64_t len = xfer("inflate", QI, &v, 1);
        if (len < 0) return;
        if (len != 0) { check("inflate", 0, "used length", (uint64_t)len); return; }
    }
    writel(base + CFG + 4, 2048);
    uint64_t left = nonzero_pages(a, b);
    check("inflated_pages_discarded", left == 0, "pages not zero after inflating", left);
    for (int c = 0; c < 8; c++) {
        struct vbuf v = { pfns[c], sizeof pfns[c], 0 };
        int64_t len = xfer("deflate", QD, &v, 1);
        if (len < 0) return;
        if (len != 0) { check("deflate", 0, "used length", (uint64_t)len); return; }
    }
    writel(base + CFG + 4, 0);
    touch(a, b);
    t = touched_pages(a, b);
    check("deflated_pages_usable", t == 2048, "pages holding what was written", t);
    check("canary_intact_after_inflate", canary_ok(), "the canary changed", 0);
}

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    paging_init();
    idt_init();
    timeout_ms = cmdline_u64("jkrun.test.timeout_ms=", 20000);
    int irq = -1, found = 0;
    for (int k = 0; !found && !virtio_find(k, &base, &irq); k++) found = readl(base + 0x08) == DEVICE_BALLOON;
    if (!found) fail("no virtio-balloon device announced");
    if (ram_top() < TOUCH_END + 16 * MIB) fail("needs at least 80 MiB of RAM");

    uint32_t maxes = 0;
    for (int q = 0; q < 5; q++) { writel(base + 0x30, q); maxes += readl(base + 0x34) > 0; }
    writel(base + 0x30, 5);
    uint32_t max5 = readl(base + 0x34);
    check("five_queues", maxes == 5 && max5 == 0, "queues with QueueNumMax > 0, and q5's", (uint64_t)maxes << 32 | max5);
    uint32_t c0 = readl(base + CFG), c1 = readl(base + CFG + 4), c2 = readl(base + CFG + 8), c3 = readl(base + CFG + 12);
    check("config_initial", (c0 | c1 | c2 | c3) == 0, "num_pages|actual|cmd_id|poison", (uint64_t)c0 << 32 | c1 | c2 | c3);

    const char *err = virtio_init(&dev, base, irq, DEVICE_BALLOON, BIT(F_STATS_VQ) | BIT(F_FREE_PAGE_HINT) | BIT(F_REPORTING));
    for (int q = 0; !err && q < 5; q++) err = virtio_setup_queue(&dev, q);
    if (!err) err = virtio_driver_ok(&dev);
    if (err) fail(err);
    virtio_enable_irq(&dev);
    uint64_t want = BIT(F_STATS_VQ) | BIT(F_DEFLATE_ON_OOM) | BIT(F_FREE_PAGE_HINT) | BIT(F_REPORTING);
    check("features", (dev.device_features & want) == want, "device features", dev.device_features);

    /* the stats buffer, kept by the device until the host asks */
    stats[0] = (struct stat_entry){ 4, 0x1234 };
    stats[1] = (struct stat_entry){ 5, ram_top() };
    struct vbuf sb = { stats, sizeof stats, 0 };
    int stats_head = virtio_add(&dev, QS, &sb, 1);
    virtio_notify(&dev, QS);

    canary_fill();
    touch(TOUCH_START, TOUCH_END);
    uint64_t t = touched_pages(TOUCH_START, TOUCH_END);
    check("touched", t == (TOUCH_END - TOUCH_START) / PAGE, "pages touched", t);
    printf_lite("TOUCHED\n");
    uint32_t irq0 = dev.irq_count;
    dev.isr_bits = 0;
    if (!wait_target(1)) fail("the host did not set target 1");
    check("config_interrupt", dev.irq_count != irq0 && (dev.isr_bits & 2), "irqs, isr bits", dev.isr_bits);

    report();
    printf_lite("REPORTED\n");
    dev.isr_bits = 0;
    if (!wait_target(2)) fail("the host did not set target 2");

    hostile();
    inflate();

    /* a free page hint chain is returned unused; the command id stays STOP */
    struct vbuf hb = { hint_buf, sizeof hint_buf, 1 };
    int64_t len = xfer("hint", QH, &hb, 1);
    if (len >= 0) check("hint", len == 0 && readl(base + CFG + 8) == 0, "used length", (uint64_t)len);

    check("stats_held", dev.vq[QS].used->idx == 0, "stats buffer returned before the host asked", dev.vq[QS].used->idx);
    printf_lite("INFLATED\n");
    struct vring_used_elem e;
    err = virtio_wait_used(&dev, QS, &e, timeout_ms);
    if (err) { printf_lite("CHECK stats_request FAIL %s\n", err); failures++; checks++; }
    else {
        check("stats_request", e.id == (uint32_t)stats_head && e.len == 0, "used id<<32|len", (uint64_t)e.id << 32 | e.len);
        stats[0].val = 0x5678;
        virtio_add(&dev, QS, &sb, 1);
        virtio_notify(&dev, QS);
        printf_lite("STATS_REFILLED\n");
    }
    dev.isr_bits = 0;
    if (!wait_target(3)) fail("the host did not set target 3");
    check("canary_intact_at_end", canary_ok(), "the canary changed", 0);

    printf_lite("IRQS %u\n", dev.irq_count);
    if (failures) { printf_lite("BALLOON FAIL %d\n", failures); return 1; }
    printf_lite("BALLOON ok %d\n", checks);
    return 0;
}
