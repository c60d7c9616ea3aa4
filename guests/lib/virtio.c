/* A tiny virtio-mmio (version 2) driver with split virtqueues. */
#include "guest.h"

enum { R_MAGIC = 0x00, R_VERSION = 0x04, R_DEVICE_ID = 0x08, R_DEV_FEAT = 0x10, R_DEV_FEAT_SEL = 0x14,
       R_DRV_FEAT = 0x20, R_DRV_FEAT_SEL = 0x24, R_QSEL = 0x30, R_QNUM_MAX = 0x34, R_QNUM = 0x38,
       R_QREADY = 0x44, R_QNOTIFY = 0x50, R_ISR = 0x60, R_ISR_ACK = 0x64, R_STATUS = 0x70,
       R_QDESC = 0x80, R_QDRIVER = 0x90, R_QDEVICE = 0xA0 };
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8, S_NEEDS_RESET = 0x40, S_FAILED = 0x80 };
#define F_VERSION_1 (1ULL << 32)
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define IRQ_VECTOR_BASE 0x20
#define WATCHDOG_VECTOR 0x40

static uint8_t vq_pages[8][4096] __attribute__((aligned(4096)));
static int vq_pages_used;
#define PER_PIN 8
static struct virtio_dev *irq_dev[IOAPIC_PINS][PER_PIN];   /* the devices on each pin, in enable order */
static int irq_devs[IOAPIC_PINS];
static volatile uint32_t irq_spurious[IOAPIC_PINS];

static inline void mb(void) { __asm__ __volatile__("lock; addl $0, (%%rsp)" ::: "memory"); }
static uint32_t rd(struct virtio_dev *d, uint32_t r) { return readl(d->base + r); }
static void wr(struct virtio_dev *d, uint32_t r, uint32_t v) { writel(d->base + r, v); }

int virtio_find(int k, uintptr_t *base, int *irq) {
    const char *c = cmdline(), *key = "virtio_mmio.device=";
    size_t n = strlen(key);
    for (const char *p = c; *p; p++) {
        if ((p != c && p[-1] != ' ') || strncmp(p, key, n)) continue;
        if (k--) continue;
        const char *q = p + n;
        while (*q && *q != '@' && *q != ' ') q++;           /* skip the size, e.g. "4K" */
        if (*q != '@') return -1;
        *base = (uintptr_t)parse_u64(q + 1, &q);
        *irq = *q == ':' ? (int)parse_u64(q + 1, 0) : -1;
        return 0;
    }
    return -1;
}

static char errbuf[96];
static const char *err_hex(const char *what, uint32_t v) {
    /* "what 0x...": tiny formatter into errbuf */
    size_t i = 0; while (*what && i < 60) errbuf[i++] = *what++;
    errbuf[i++] = ' '; errbuf[i++] = '0'; errbuf[i++] = 'x';
    int started = 0;
    for (int s = 28; s >= 0; s -= 4) {
        int dgt = (v >> s) & 15;
        if (dgt || started || s == 0) { errbuf[i++] = "0123456789abcdef"[dgt]; started = 1; }
    }
    errbuf[i] = 0;
    return errbuf;
}

const char *virtio_init(struct virtio_dev *d, uintptr_t base, int irq, uint32_t want_id, uint64_t wanted) {
    memset(d, 0, sizeof *d);
    d->base = base; d->irq = irq;
    uint32_t magic = rd(d, R_MAGIC);
    if (magic != 0x74726976) return err_hex("bad magic", magic);
    uint32_t ver = rd(d, R_VERSION);
    if (ver != 2) return err_hex("unsupported version", ver);
    d->device_id = rd(d, R_DEVICE_ID);
    if (d->device_id == 0) return "device id 0 (no device in this slot)";
    if (d->device_id != want_id) return err_hex("unexpected device id", d->device_id);
    wr(d, R_STATUS, 0);
    if (rd(d, R_STATUS) != 0) return "reset did not clear status";
    wr(d, R_STATUS, S_ACK);
    wr(d, R_STATUS, S_ACK | S_DRIVER);
    wr(d, R_DEV_FEAT_SEL, 0); uint64_t lo = rd(d, R_DEV_FEAT);
    wr(d, R_DEV_FEAT_SEL, 1); uint64_t hi = rd(d, R_DEV_FEAT);
    d->device_features = lo | hi << 32;
    if (!(d->device_features & F_VERSION_1)) return "device does not offer VERSION_1";
    d->driver_features = d->device_features & (wanted | F_VERSION_1);
    wr(d, R_DRV_FEAT_SEL, 0); wr(d, R_DRV_FEAT, (uint32_t)d->driver_features);
    wr(d, R_DRV_FEAT_SEL, 1); wr(d, R_DRV_FEAT, (uint32_t)(d->driver_features >> 32));
    wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    uint32_t st = rd(d, R_STATUS);
    if (!(st & S_FEATURES_OK)) { wr(d, R_STATUS, st | S_FAILED); return err_hex("FEATURES_OK did not stick, status", st); }
    return 0;
}

const char *virtio_setup_queue(struct virtio_dev *d, int q) {
    if (vq_pages_used >= 8) return "out of queue memory";
    const char *err = virtio_setup_queue_on(d, q, vq_pages[vq_pages_used]);
    if (!err) vq_pages_used++;
    return err;
}

const char *virtio_setup_queue_on(struct virtio_dev *d, int q, void *mem) {
    if (q >= VIRTIO_MAX_QUEUES) return "queue index too large for this driver";
    wr(d, R_QSEL, q);
    if (rd(d, R_QREADY)) return "queue already ready";
    uint32_t max = rd(d, R_QNUM_MAX);
    if (max == 0) return "queue not available (QueueNumMax 0)";
    struct vq *v = &d->vq[q];
    v->index = q;
    v->size = max < VQ_SIZE ? (int)max : VQ_SIZE;
    uint8_t *page = mem;
    memset(page, 0, 4096);                                       /* a reused page must not show old idx values */
    v->desc = (struct vring_desc *)page;                         /* 16 * size  */
    v->avail = (struct vring_avail *)(page + 16 * VQ_SIZE);       /* 6 + 2 * size */
    v->used = (volatile struct vring_used *)(page + 2048);        /* 6 + 8 * size, 4-aligned */
    for (int i = 0; i < v->size; i++) v->desc[i].next = (uint16_t)(i + 1);
    v->free_head = 0; v->num_free = (uint16_t)v->size; v->last_used = 0;
    wr(d, R_QNUM, v->size);
    uint64_t a;
    a = (uintptr_t)v->desc;  wr(d, R_QDESC, (uint32_t)a);    wr(d, R_QDESC + 4, (uint32_t)(a >> 32));
    a = (uintptr_t)v->avail; wr(d, R_QDRIVER, (uint32_t)a);  wr(d, R_QDRIVER + 4, (uint32_t)(a >> 32));
    a = (uintptr_t)v->used;  wr(d, R_QDEVICE, (uint32_t)a);  wr(d, R_QDEVICE + 4, (uint32_t)(a >> 32));
    wr(d, R_QREADY, 1);
    if (q + 1 > d->nqueues) d->nqueues = q + 1;
    return 0;
}

const char *virtio_driver_ok(struct virtio_dev *d) {
    wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    uint32_t st = rd(d, R_STATUS);
    if (st & (S_FAILED | S_NEEDS_RESET)) return err_hex("device failed after DRIVER_OK, status", st);
    if (!(st & S_DRIVER_OK)) return err_hex("DRIVER_OK did not stick, status", st);
    return 0;
}

int virtio_add(struct virtio_dev *d, int q, const struct vbuf *bufs, int n) {
    struct vq *v = &d->vq[q];
    if (n < 1 || n > v->num_free) return -1;
    int head = v->free_head, i = head, last = head;
    for (int k = 0; k < n; k++) {
        struct vring_desc *ds = &v->desc[i];
        ds->addr = (uint64_t)(uintptr_t)bufs[k].addr;
        ds->len = bufs[k].len;
        ds->flags = (uint16_t)((bufs[k].writable ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
        last = i;
        i = ds->next;
    }
    v->free_head = v->desc[last].next;
    v->num_free -= (uint16_t)n;
    v->avail->ring[v->avail->idx % v->size] = (uint16_t)head;
    barrier();                       /* ring entry before idx (x86 keeps store order) */
    v->avail->idx++;
    return head;
}

void virtio_notify(struct virtio_dev *d, int q) { mb(); wr(d, R_QNOTIFY, q); }

static void free_chain(struct vq *v, uint16_t id) {
    uint16_t i = id; int n = 1;
    while (v->desc[i].flags & VIRTQ_DESC_F_NEXT) { i = v->desc[i].next; n++; }
    v->desc[i].next = v->free_head;
    v->free_head = id;
    v->num_free += (uint16_t)n;
}

/* as Linux's vm_interrupt for every device on the pin: read InterruptStatus, acknowledge what was read */
static void virtio_irq(int vector) {
    int pin = vector - IRQ_VECTOR_BASE, n = pin >= 0 && pin < IOAPIC_PINS ? irq_devs[pin] : 0, mine = 0;
    for (int i = 0; i < n; i++) {
        struct virtio_dev *d = irq_dev[pin][i];
        uint32_t isr = rd(d, R_ISR);
        wr(d, R_ISR_ACK, isr);
        if (!isr && n > 1) continue;             /* a sharer's interrupt; alone on its line, every one counts */
        d->isr_bits |= isr;
        d->irq_count++;
        mine |= isr != 0;
    }
    if (n && !mine) irq_spurious[pin]++;
}

uint32_t virtio_spurious(int pin) { return pin >= 0 && pin < IOAPIC_PINS ? irq_spurious[pin] : 0; }

void virtio_enable_irq(struct virtio_dev *d) {
    static int timer_on;
    if (d->irq < 0 || d->irq >= IOAPIC_PINS) return;
    int pin = d->irq, known = 0;
    for (int i = 0; i < irq_devs[pin]; i++)          /* a device driven anew through another struct: that one now */
        if (irq_dev[pin][i]->base == d->base) { irq_dev[pin][i] = d; known = 1; }
    if (!known) {
        if (irq_devs[pin] == PER_PIN) return;
        irq_dev[pin][irq_devs[pin]++] = d;
    }
    d->level = mp_irq_level(pin) == 1;
    pic_mask_all();
    lapic_enable();
    irq_register(IRQ_VECTOR_BASE + pin, virtio_irq);
    if (d->level) ioapic_route_level(pin, IRQ_VECTOR_BASE + pin, lapic_id());
    else ioapic_route(pin, IRQ_VECTOR_BASE + pin, lapic_id());
    if (!timer_on) { lapic_timer_periodic(WATCHDOG_VECTOR, TICK_MS * 1000000u); timer_on = 1; } /* 1 GHz APIC bus */
    sti();
}

int virtio_take_used(struct virtio_dev *d, int q, struct vring_used_elem *out) {
    struct vq *v = &d->vq[q];
    if (v->used->idx == v->last_used) return 0;
    barrier();
    *out = v->used->ring[v->last_used % v->size];
    v->last_used++;
    if (out->id < (uint32_t)v->size) free_chain(v, (uint16_t)out->id);
    return 1;
}

const char *virtio_wait_used(struct virtio_dev *d, int q, struct vring_used_elem *out, uint64_t timeout_ms) {
    struct vq *v = &d->vq[q];
    uint64_t t0 = lapic_ticks, ticks = timeout_ms / TICK_MS + 1;
    uint32_t irq0 = d->irq_count;
    int waited = 0;
    for (;;) {
        cli();
        if (v->used->idx != v->last_used) break;
        if (lapic_ticks - t0 > ticks) { sti(); return "timeout waiting for a used buffer"; }
        waited = 1;
        sti_hlt();
    }
    sti();
    if (waited) {                   /* the used entry appeared while we slept: an IRQ must come */
        /* within 1 s: the device thread writes the used ring, then the irqfd, and a loaded host (CI, the nested
         * emulator beside it) can preempt it between the two for more than the 100 ms this allowed before */
        uint64_t t1 = lapic_ticks;
        while (d->irq_count == irq0 && lapic_ticks - t1 < 100) sti_hlt();
        if (d->irq_count == irq0) return "no interrupt (used buffer seen by polling only)";
    }
    barrier();
    struct vring_used_elem e = v->used->ring[v->last_used % v->size];
    v->last_used++;
    if (e.id >= (uint32_t)v->size) return err_hex("used id out of range", e.id);
    free_chain(v, (uint16_t)e.id);
    *out = e;
    return 0;
}
