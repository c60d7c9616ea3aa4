/* irqshare: many virtio-blk disks driven at once, several on each interrupt line.
 *
 * Every virtio_mmio.device= of the cmdline is a virtio-blk disk (at most 64); disk k holds blk.c's pattern with seed
 * k + 1 (byte i of sector s is (uint8_t)(seed + 7*s + i + 0x80*(i >> 8))). The guest sets them all up, routes each
 * line as the MP table says (level-triggered where it lists the pin so, else edge), then keeps qd one-sector reads
 * in flight on every disk at once until each disk completed `reads` of them, checking six sample bytes and the
 * status of each. A disk's completions are taken only after an interrupt showed its InterruptStatus VRING bit: an
 * interrupt lost, or delivered on another line than the disk's, leaves that disk stalled, and a stall of timeout_ms
 * fails naming each stalled disk, its line and how many completions wait in its used ring unannounced.
 *
 * Then, line by line with every disk idle, the late phase: a completion raised while the interrupt handler still runs
 * (after it read the disk's InterruptStatus, before its EOI) must be announced by another interrupt. The guest's
 * own handler, having taken one disk's first completion, submits a second read to that disk and waits inside the
 * handler until the disk's InterruptStatus shows it (plus ~2 ms for the VMM to raise the line) before returning. A
 * level-triggered line is still up at the EOI and the IOAPIC delivers again; an edge pulse on a level-triggered pin
 * (remote IRR still set) is dropped, and nothing else on the idle line would rescue it.
 *
 * Bench mode (jkrun.irqshare.bench=<name>:<a>+<b>[,<name>:<c>+<d>...], for benchmarks/run irqshare): instead of
 * the above, phase by phase the listed disks alone are driven at once, each `reads` reads of bs bytes at random
 * bs-aligned offsets (status checked, data not), printing "PHASE <name> start", "PHASE <name> done <reads>",
 * "STATS <name> irqs <n> spurious <n>", and "BENCH ok" at the end. Its data buffers live at 16 MiB, outside the ELF.
 *
 * cmdline: jkrun.irqshare.reads=<n> (64)  jkrun.irqshare.qd=<1..4> (4)  jkrun.irqshare.late=0|1 (1)
 *          jkrun.irqshare.bs=512|4096 (512)  jkrun.irqshare.bench=...  jkrun.test.timeout_ms=<ms> (20000)
 * Prints "LINE <pin> devices <n> level|edge", "CHECK mp_trigger ok|FAIL ..." (a line of two or more disks must be
 * level-triggered in the MP table, a line of one edge), "DISK <k> irq <pin> reads <n> irqs <n>", "SPURIOUS <n>",
 * "STALL disk <k> irq <pin> inflight <n> unannounced <n> isr 0x<bits>" on a stall, "BAD disk <k> ..." on a wrong
 * completion, "LATE <pin> disk <k> ok|FAIL <why>" per line, then "IRQSHARE ok <disks> <reads>" or
 * "IRQSHARE FAIL <why>"; exit 0 / 1. A LATE line also says whether, as the handler returned, the LAPIC already held the
 * vector again and the IOAPIC entry its Remote IRR (KVM normally holds a level interrupt back until the EOI; the
 * kvm-pvm host this was written on accepts it into the LAPIC at once, and so does not drop an edge there either).
 */
#include "guest.h"

#define MAX_DISKS 64
#define MAX_QD 4
#define SECTOR 512
enum { T_IN = 0 };

struct blk_hdr { uint32_t type, ioprio; uint64_t sector; };

struct disk {
    struct virtio_dev d;
    uint64_t capacity, lcg;
    uint32_t done, submitted, target, inflight, irqs_seen;
    int slot_of[VQ_SIZE];                 /* descriptor head -> request slot */
    uint64_t sector[MAX_QD];
    struct blk_hdr hdr[MAX_QD];
    volatile uint8_t status[MAX_QD];
};

static struct disk disks[MAX_DISKS];
static uint8_t qpages[MAX_DISKS][4096] __attribute__((aligned(4096)));
static int ndisks, qd, failures, check_data = 1;
static uint32_t reads, bs = SECTOR;
/* request buffers: 4 KiB per disk and slot at 16 MiB (1 MiB in all; a VM of 64 MiB has it), never zeroed */
#define DATA(idx, slot) ((uint8_t *)(0x1000000UL + ((uintptr_t)(idx) * MAX_QD + (uintptr_t)(slot)) * 4096))

static uint8_t pat(uint8_t s, uint64_t sector, uint32_t i) { return (uint8_t)(s + sector * 7 + i + (i >> 8) * 0x80); }

static uint32_t rd32(struct disk *k, uint32_t off) { return readl(k->d.base + off); }

static int submit(int idx, int slot) {
    struct disk *k = &disks[idx];
    k->lcg = k->lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    uint64_t per = bs / SECTOR, s = (k->lcg >> 33) % (k->capacity / per) * per;
    k->sector[slot] = s;
    k->hdr[slot] = (struct blk_hdr){ T_IN, 0, s };
    k->status[slot] = 0xEE;
    struct vbuf b[3] = { { &k->hdr[slot], sizeof k->hdr[slot], 0 }, { DATA(idx, slot), bs, 1 },
                         { (void *)&k->status[slot], 1, 1 } };
    int head = virtio_add(&k->d, 0, b, 3);
    if (head < 0) return -1;
    k->slot_of[head] = slot;
    k->submitted++;
    k->inflight++;
    return 0;
}

static const uint16_t samples[] = { 0, 1, 255, 256, 510, 511 };

/* every used element the disk has: check it, resubmit while reads remain; returns how many were taken */
static int harvest(int idx) {
    struct disk *k = &disks[idx];
    struct vring_used_elem e;
    int n = 0, again = 0;
    while (virtio_take_used(&k->d, 0, &e)) {
        n++;
        k->inflight--;
        if (e.id >= VQ_SIZE) { printf_lite("BAD disk %d used id %u\n", idx, e.id); failures++; continue; }
        int slot = k->slot_of[e.id];
        uint64_t s = k->sector[slot];
        if (k->status[slot] != 0) { printf_lite("BAD disk %d sector %lu status 0x%x\n", idx, s, k->status[slot]); failures++; }
        for (int j = 0; check_data && j < 6; j++) {
            uint8_t want = pat((uint8_t)(idx + 1), s, samples[j]), got = DATA(idx, slot)[samples[j]];
            if (got != want) {
                printf_lite("BAD disk %d sector %lu byte %u is 0x%x, want 0x%x (another disk's data?)\n", idx, s,
                            samples[j], got, want);
                failures++;
                break;
            }
        }
        k->done++;
        if (k->submitted < k->target) { if (submit(idx, slot)) failures++; else again = 1; }
    }
    if (again) virtio_notify(&k->d, 0);
    return n;
}

/* ---- the late phase ------------------------------------------------------------------------------------------ */

/* irr: the LAPIC had the vector pending again when the handler returned; remote: the IOAPIC entry's Remote IRR */
static struct { volatile int phase, disk, announced, irr, remote; const char *why; } late;   /* phase 1 armed, 2 raised */

/* the library's scan (read and acknowledge every disk on the pin), then, armed, the late completion */
static void late_irq(int vector) {
    int pin = vector - 0x20;
    for (int i = 0; i < ndisks; i++) {
        struct disk *k = &disks[i];
        if (k->d.irq != pin) continue;
        uint32_t isr = rd32(k, 0x60);
        writel(k->d.base + 0x64, isr);
        if (!isr) continue;
        k->d.isr_bits |= isr;
        k->d.irq_count++;
        if (late.phase == 2 && i == late.disk) late.announced = 1;
    }
    if (late.phase != 1 || disks[late.disk].d.irq != pin) return;
    struct disk *k = &disks[late.disk];
    late.phase = 2;
    if (submit(late.disk, 1)) { late.why = "no room for the second read"; return; }
    virtio_notify(&k->d, 0);
    uint64_t t0 = rdtsc();
    while (!(rd32(k, 0x60) & 1) && rdtsc() - t0 < 4000000000ULL) pause();
    if (!(rd32(k, 0x60) & 1)) { late.why = "the second read did not complete within the handler"; return; }
    t0 = rdtsc();
    while (rdtsc() - t0 < 30000000ULL) pause();           /* ~10 ms more: the VMM raises the line after the bit */
    late.irr = (readl(LAPIC_BASE + 0x200 + 0x10 * (vector / 32)) >> (vector % 32)) & 1;
    writel(IOAPIC_BASE, 0x10 + 2 * pin);
    late.remote = (readl(IOAPIC_BASE + 0x10) >> 14) & 1;
}

/* one line: the first read of `disk` interrupts, the handler makes the second complete before its EOI */
static int late_line(int idx, uint64_t timeout_ms) {
    struct disk *k = &disks[idx];
    int pin = k->d.irq;
    late.disk = idx; late.announced = 0; late.why = 0;
    cli();
    k->d.isr_bits = 0;
    late.phase = 1;
    if (submit(idx, 0)) { sti(); printf_lite("LATE %d disk %d FAIL no room in its queue\n", pin, idx); return 1; }
    virtio_notify(&k->d, 0);
    uint64_t t0 = lapic_ticks, ticks = timeout_ms / 10 + 1;
    while (!late.announced && !late.why && lapic_ticks - t0 < ticks) sti_hlt();
    sti();
    uint16_t unannounced = (uint16_t)(k->d.vq[0].used->idx - k->d.vq[0].last_used);
    late.phase = 0;
    struct vring_used_elem e;
    while (virtio_take_used(&k->d, 0, &e)) k->inflight--;
    if (late.why || !late.announced) {
        printf_lite("LATE %d disk %d FAIL %s (phase %d, %u completions in the used ring, isr 0x%x)\n", pin, idx,
                    late.why ? late.why : "the completion raised before the EOI was never announced", late.phase,
                    unannounced, rd32(k, 0x60));
        return 1;
    }
    printf_lite("LATE %d disk %d ok (at the EOI: lapic irr %d, remote irr %d)\n", pin, idx, late.irr, late.remote);
    return 0;
}

/* the disks in list[] busy at once, qd reads in flight on each, until each completed `each` reads; a disk's
 * completions are taken only after an interrupt showed its VRING bit. 0 done, 1 stalled (reported). */
static int drive(const int *list, int n, uint32_t each, uint64_t timeout_ms) {
    for (int j = 0; j < n; j++) {
        struct disk *k = &disks[list[j]];
        k->done = k->submitted = 0;
        k->target = each;
        cli(); k->d.isr_bits = 0; sti();
    }
    for (int j = 0; j < n; j++) {
        for (int s = 0; s < qd && disks[list[j]].submitted < each; s++)
            if (submit(list[j], s)) { printf_lite("IRQSHARE FAIL disk %d: no room in its queue\n", list[j]); return 1; }
    }
    for (int j = 0; j < n; j++) virtio_notify(&disks[list[j]].d, 0);

    uint64_t total = (uint64_t)each * n, done = 0, last = lapic_ticks, ticks = timeout_ms / 10 + 1;
    while (done < total) {
        int took = 0;
        for (int j = 0; j < n; j++) {
            struct disk *k = &disks[list[j]];
            cli();
            uint32_t bits = k->d.isr_bits;
            k->d.isr_bits = 0;
            sti();
            if (!(bits & 1)) continue;
            k->irqs_seen++;
            int got = harvest(list[j]);
            done += (uint64_t)got;
            took |= got > 0;
        }
        if (took) { last = lapic_ticks; continue; }
        cli();
        int pending = 0;
        for (int j = 0; j < n; j++) pending |= disks[list[j]].d.isr_bits & 1;
        if (pending) { sti(); continue; }
        if (lapic_ticks - last > ticks) {
            sti();
            for (int j = 0; j < n; j++) {
                struct disk *k = &disks[list[j]];
                if (k->done >= each) continue;
                uint16_t unannounced = (uint16_t)(k->d.vq[0].used->idx - k->d.vq[0].last_used);
                printf_lite("STALL disk %d irq %d inflight %u unannounced %u isr 0x%x\n", list[j], k->d.irq, k->inflight,
                            unannounced, rd32(k, 0x60));
            }
            printf_lite("IRQSHARE FAIL stalled at %lu of %lu reads\n", done, total);
            return 1;
        }
        sti_hlt();
    }
    sti();
    return 0;
}

static uint32_t spurious_total(void) {
    uint32_t n = 0;
    for (int p = 0; p < IOAPIC_PINS; p++) n += virtio_spurious(p);
    return n;
}

/* "name:a+b,name:c+d": each phase drives its disks alone */
static int run_bench(const char *spec, uint64_t timeout_ms) {
    const char *p = spec;
    while (*p) {
        char name[32]; int nl = 0, list[MAX_DISKS], n = 0;
        while (*p && *p != ':' && nl < 31) name[nl++] = *p++;
        name[nl] = 0;
        if (*p++ != ':') { printf_lite("BENCH FAIL bad spec at %s\n", name); return 1; }
        for (;;) {
            const char *q;
            uint64_t v = parse_u64(p, &q);
            if (q == p || (int)v >= ndisks || n == MAX_DISKS) { printf_lite("BENCH FAIL bad disk list in %s\n", name); return 1; }
            list[n++] = (int)v;
            p = q;
            if (*p != '+') break;
            p++;
        }
        if (*p == ',') p++;
        uint32_t irq0 = 0, sp0 = spurious_total();
        for (int j = 0; j < n; j++) irq0 += disks[list[j]].d.irq_count;
        printf_lite("PHASE %s start\n", name);
        if (drive(list, n, reads, timeout_ms)) return 1;
        printf_lite("PHASE %s done %lu\n", name, (uint64_t)reads * n);
        uint32_t irqs = 0;
        for (int j = 0; j < n; j++) irqs += disks[list[j]].d.irq_count;
        printf_lite("STATS %s irqs %u spurious %u\n", name, irqs - irq0, spurious_total() - sp0);
    }
    if (failures) { printf_lite("BENCH FAIL %d bad completions\n", failures); return 1; }
    printf_lite("BENCH ok\n");
    return 0;
}

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    paging_init();
    idt_init();
    reads = (uint32_t)cmdline_u64("jkrun.irqshare.reads=", 64);
    qd = (int)cmdline_u64("jkrun.irqshare.qd=", 4);
    bs = cmdline_u64("jkrun.irqshare.bs=", SECTOR) == 4096 ? 4096 : SECTOR;
    if (qd < 1 || qd > MAX_QD) qd = MAX_QD;
    uint64_t timeout_ms = cmdline_u64("jkrun.test.timeout_ms=", 20000);

    uintptr_t base; int irq;
    for (ndisks = 0; ndisks < MAX_DISKS && virtio_find(ndisks, &base, &irq) == 0; ndisks++) {
        struct disk *k = &disks[ndisks];
        const char *err = virtio_init(&k->d, base, irq, 2, 0);
        if (!err) err = virtio_setup_queue_on(&k->d, 0, qpages[ndisks]);
        if (!err) err = virtio_driver_ok(&k->d);
        if (err) { printf_lite("IRQSHARE FAIL disk %d at 0x%lx: %s\n", ndisks, (uint64_t)base, err); return 1; }
        k->capacity = rd32(k, 0x100) | (uint64_t)rd32(k, 0x104) << 32;
        if (!k->capacity) { printf_lite("IRQSHARE FAIL disk %d has no sectors\n", ndisks); return 1; }
        k->lcg = 0x9E3779B97F4A7C15ULL * (uint64_t)(ndisks + 1);
    }
    if (!ndisks) { printf_lite("IRQSHARE FAIL no virtio device announced\n"); return 1; }

    /* the lines: how many disks each carries, and what the MP table says of its trigger mode */
    int per_pin[IOAPIC_PINS] = { 0 }, bad_mode = 0;
    for (int i = 0; i < ndisks; i++)
        if (disks[i].d.irq >= 0 && disks[i].d.irq < IOAPIC_PINS) per_pin[disks[i].d.irq]++;
    for (int p = 0; p < IOAPIC_PINS; p++) {
        if (!per_pin[p]) continue;
        int level = mp_irq_level(p);
        printf_lite("LINE %d devices %d %s\n", p, per_pin[p], level == 1 ? "level" : level == 0 ? "edge" : "none");
        if (level != (per_pin[p] > 1)) bad_mode++;
    }
    if (bad_mode) { printf_lite("CHECK mp_trigger FAIL %d lines\n", bad_mode); failures++; }
    else printf_lite("CHECK mp_trigger ok\n");

    for (int i = 0; i < ndisks; i++) virtio_enable_irq(&disks[i].d);

    char spec[256];
    if (cmdline_get("jkrun.irqshare.bench=", spec, sizeof spec)) {
        check_data = 0;
        return run_bench(spec, timeout_ms);
    }

    int all[MAX_DISKS];
    for (int i = 0; i < ndisks; i++) all[i] = i;
    if (drive(all, ndisks, reads, timeout_ms)) return 1;

    if (cmdline_u64("jkrun.irqshare.late=", 1)) {
        for (int p = 0; p < IOAPIC_PINS; p++)
            if (per_pin[p]) irq_register(0x20 + p, late_irq);
        for (int p = 0; p < IOAPIC_PINS; p++) {
            if (!per_pin[p]) continue;
            int idx = 0;
            while (disks[idx].d.irq != p) idx++;
            failures += late_line(idx, timeout_ms < 5000 ? timeout_ms : 5000);
        }
    }

    uint32_t spurious = spurious_total();
    for (int i = 0; i < ndisks; i++)
        printf_lite("DISK %d irq %d reads %u irqs %u\n", i, disks[i].d.irq, disks[i].done, disks[i].d.irq_count);
    printf_lite("SPURIOUS %u\n", spurious);
    if (failures) { printf_lite("IRQSHARE FAIL %d bad completions or lines\n", failures); return 1; }
    printf_lite("IRQSHARE ok %d %lu\n", ndisks, (uint64_t)reads * ndisks);
    return 0;
}
