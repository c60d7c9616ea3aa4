#include "guest.h"
#include "virtio.h"

enum { R_MAGIC = 0x00, R_VERSION = 0x04, R_DEVICE_ID = 0x08, R_DEV_FEAT = 0x10, R_DEV_FEAT_SEL = 0x14,
       R_DRV_FEAT = 0x20, R_DRV_FEAT_SEL = 0x24, R_QSEL = 0x30, R_QNUM_MAX = 0x34, R_QNUM = 0x38, R_QREADY = 0x44,
       R_QNOTIFY = 0x50, R_STATUS = 0x70, R_QDESC = 0x80, R_QDRIVER = 0x90, R_QDEVICE = 0xA0, R_CONFIG = 0x100 };
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8, S_NEEDS_RESET = 0x40, S_FAILED = 0x80 };
#define F_VERSION_1 (1ULL << 32)
#define DESC_NEXT 1
#define DESC_WRITE 2

static uint8_t vq_pages[8][4096] __attribute__((aligned(4096)));
static int vq_pages_used;
static inline void dmb(void) { __asm__ __volatile__("dmb sy" ::: "memory"); }
static uint32_t rd(struct virtio_dev *d, uint32_t r) { return mmio_read32(d->base + r); }
static void wr(struct virtio_dev *d, uint32_t r, uint32_t v) { mmio_write32(d->base + r, v); }

struct find { uint32_t id; uint64_t base; int found; const void *fdt; };
static void probe(const void *fdt, const char *name, void *arg) {
    struct find *f = arg;
    if (f->found) return;
    uint32_t len;
    const uint8_t *reg = fdt_child_prop(fdt, name, "reg", &len);
    if (!reg || len != 16) return;
    uint64_t base = be64(reg);
    if (mmio_read32(base + R_MAGIC) == 0x74726976 && mmio_read32(base + R_DEVICE_ID) == f->id) { f->base = base; f->found = 1; }
}

int virtio_find_fdt(const void *fdt, uint32_t id, uint64_t *base) {
    struct find f = { id, 0, 0, fdt };
    fdt_children(fdt, "/", "virtio_mmio@", probe, &f);
    if (!f.found) return -1;
    *base = f.base;
    return 0;
}

const char *virtio_init(struct virtio_dev *d, uint64_t base, uint32_t want_id, uint64_t wanted) {
    memset(d, 0, sizeof *d);
    d->base = base;
    if (rd(d, R_MAGIC) != 0x74726976) return "bad magic";
    if (rd(d, R_VERSION) != 2) return "not a version 2 device";
    d->device_id = rd(d, R_DEVICE_ID);
    if (d->device_id != want_id) return "unexpected device id";
    wr(d, R_STATUS, 0);
    wr(d, R_STATUS, S_ACK);
    wr(d, R_STATUS, S_ACK | S_DRIVER);
    wr(d, R_DEV_FEAT_SEL, 0); uint64_t lo = rd(d, R_DEV_FEAT);
    wr(d, R_DEV_FEAT_SEL, 1); uint64_t hi = rd(d, R_DEV_FEAT);
    uint64_t offered = lo | hi << 32;
    if (!(offered & F_VERSION_1)) return "no VERSION_1";
    d->features = offered & (wanted | F_VERSION_1);
    wr(d, R_DRV_FEAT_SEL, 0); wr(d, R_DRV_FEAT, (uint32_t)d->features);
    wr(d, R_DRV_FEAT_SEL, 1); wr(d, R_DRV_FEAT, (uint32_t)(d->features >> 32));
    wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    if (!(rd(d, R_STATUS) & S_FEATURES_OK)) return "FEATURES_OK did not stick";
    return 0;
}

const char *virtio_setup_queue(struct virtio_dev *d, int q) {
    if (q >= 4 || vq_pages_used >= 8) return "out of queues";
    wr(d, R_QSEL, q);
    uint32_t max = rd(d, R_QNUM_MAX);
    if (max == 0) return "queue not available";
    struct vq *v = &d->vq[q];
    uint8_t *page = vq_pages[vq_pages_used++];
    memset(page, 0, 4096);
    v->size = max < VQ_SIZE ? (int)max : VQ_SIZE;
    v->desc = (struct vring_desc *)page;
    v->avail = (struct vring_avail *)(page + 16 * VQ_SIZE);
    v->used = (volatile struct vring_used *)(page + 2048);
    for (int i = 0; i < v->size; i++) v->desc[i].next = (uint16_t)(i + 1);
    v->num_free = (uint16_t)v->size;
    wr(d, R_QNUM, v->size);
    uint64_t a;
    a = (uint64_t)v->desc;  wr(d, R_QDESC, (uint32_t)a);   wr(d, R_QDESC + 4, (uint32_t)(a >> 32));
    a = (uint64_t)v->avail; wr(d, R_QDRIVER, (uint32_t)a); wr(d, R_QDRIVER + 4, (uint32_t)(a >> 32));
    a = (uint64_t)v->used;  wr(d, R_QDEVICE, (uint32_t)a); wr(d, R_QDEVICE + 4, (uint32_t)(a >> 32));
    wr(d, R_QREADY, 1);
    return 0;
}

const char *virtio_driver_ok(struct virtio_dev *d) {
    wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    uint32_t st = rd(d, R_STATUS);
    return st & (S_FAILED | S_NEEDS_RESET) ? "device failed after DRIVER_OK" : 0;
}

int virtio_add(struct virtio_dev *d, int q, const struct vbuf *bufs, int n) {
    struct vq *v = &d->vq[q];
    if (n < 1 || n > v->num_free) return -1;
    int head = v->free_head, i = head, last = head;
    for (int k = 0; k < n; k++) {
        struct vring_desc *ds = &v->desc[i];
        ds->addr = (uint64_t)bufs[k].addr;
        ds->len = bufs[k].len;
        ds->flags = (uint16_t)((bufs[k].writable ? DESC_WRITE : 0) | (k + 1 < n ? DESC_NEXT : 0));
        last = i;
        i = ds->next;
    }
    v->free_head = v->desc[last].next;
    v->num_free -= (uint16_t)n;
    v->avail->ring[v->avail->idx % v->size] = (uint16_t)head;
    dmb();                                   /* the ring entry before idx */
    v->avail->idx++;
    return head;
}

void virtio_notify(struct virtio_dev *d, int q) { dmb(); wr(d, R_QNOTIFY, (uint32_t)q); }

const char *virtio_poll_used(struct virtio_dev *d, int q, struct vring_used_elem *out, uint64_t spins) {
    struct vq *v = &d->vq[q];
    for (uint64_t s = 0; s < spins; s++) {
        if (v->used->idx != v->last_used) {
            dmb();
            *out = v->used->ring[v->last_used % v->size];
            v->last_used++;
            uint16_t i = (uint16_t)out->id; int n = 1;
            if (i >= v->size) return "used id out of range";
            while ((v->desc[i].flags & DESC_NEXT) && n < v->size) { i = v->desc[i].next; n++; }
            v->desc[i].next = v->free_head;
            v->free_head = (uint16_t)out->id;
            v->num_free += (uint16_t)n;
            return 0;
        }
    }
    return "timed out waiting for the device";
}

uint32_t virtio_config32(struct virtio_dev *d, uint32_t off) { return rd(d, R_CONFIG + off); }
