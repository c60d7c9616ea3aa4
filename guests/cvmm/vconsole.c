/*
 * Optional virtio-console (device id 3, single port, no MULTIPORT) for cvmm --console:
 * virtio-mmio v2 at 0xD0000000, IRQ 5 raised through an irqfd (notes §1.13, §4.1).
 * It exists to validate the console test guest and the guest library's virtio driver
 * (split queues, irqfd -> IOAPIC -> LAPIC -> IDT) independently of the Java device model.
 * Queue 0 (rx) is filled from stdin, queue 1 (tx) goes to stdout. Notifications arrive as
 * MMIO exits on 0x50 (no ioeventfd) and are processed in the vCPU thread.
 */
#define _GNU_SOURCE
#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define VCON_BASE 0xD0000000ULL
#define VCON_IRQ 5
#define QMAX 32

void *gpa(uint64_t a);

struct q { uint32_t num, ready; uint64_t desc, avail, used; uint16_t last_avail; };
static struct { uint32_t status, feat_sel, qsel, isr; struct q q[2]; } d;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int irqfd = -1;
static char in[4096]; static size_t in_len;   /* stdin bytes not yet given to the guest */

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };

static void raise_irq(void) { uint64_t one = 1; d.isr |= 1; if (write(irqfd, &one, 8) != 8) perror("irqfd"); }

static void put_used(struct q *q, uint16_t id, uint32_t len) {
    uint16_t *uidx = (uint16_t *)gpa(q->used + 2);
    uint32_t *e = (uint32_t *)gpa(q->used + 4 + 8 * (*uidx % q->num));
    e[0] = id; e[1] = len;
    __atomic_store_n(uidx, (uint16_t)(*uidx + 1), __ATOMIC_RELEASE);   /* entry before idx */
}

/* process one queue; caller holds mu. Returns 1 if anything was used. */
static int process(int qi) {
    struct q *q = &d.q[qi];
    if (!q->ready || !(d.status & 4)) return 0;
    int used = 0;
    for (;;) {
        uint16_t aidx = __atomic_load_n((uint16_t *)gpa(q->avail + 2), __ATOMIC_ACQUIRE);
        if (q->last_avail == aidx) break;
        if (qi == 0 && in_len == 0) break;               /* rx: wait for host input */
        uint16_t head = *(uint16_t *)gpa(q->avail + 4 + 2 * (q->last_avail % q->num));
        q->last_avail++;
        uint32_t total = 0; uint16_t i = head;
        for (int n = 0; n < QMAX; n++) {
            struct desc *ds = gpa(q->desc + 16 * (i % q->num));
            if (qi == 1 && !(ds->flags & 2)) { fwrite(gpa(ds->addr), 1, ds->len, stdout); total += ds->len; }
            if (qi == 0 && (ds->flags & 2)) {
                size_t k = ds->len < in_len ? ds->len : in_len;
                memcpy(gpa(ds->addr), in, k); memmove(in, in + k, in_len - k); in_len -= k; total += k;
            }
            if (!(ds->flags & 1)) break;
            i = ds->next;
        }
        if (qi == 1) fflush(stdout);
        put_used(q, head, qi == 0 ? total : 0);
        used = 1;
    }
    if (used) raise_irq();
    return used;
}

static void *stdin_thread(void *arg) {
    (void)arg;
    char buf[256]; ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0) {
        pthread_mutex_lock(&mu);
        if (in_len + n <= sizeof in) { memcpy(in + in_len, buf, n); in_len += n; }
        process(0);
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

void vcon_attach(int vm_fd) {
    static int started;
    memset(&d, 0, sizeof d);
    irqfd = eventfd(0, EFD_CLOEXEC);
    struct kvm_irqfd f = { .fd = irqfd, .gsi = VCON_IRQ };
    if (ioctl(vm_fd, KVM_IRQFD, &f) < 0) perror("KVM_IRQFD");
    if (!started) { pthread_t t; pthread_create(&t, NULL, stdin_thread, NULL); pthread_detach(t); started = 1; }
}

void vcon_detach(void) { if (irqfd >= 0) close(irqfd); irqfd = -1; }

/* returns 1 if the access was the console's */
int vcon_mmio(uint64_t addr, uint8_t *data, uint32_t len, int is_write) {
    if (addr < VCON_BASE || addr >= VCON_BASE + 0x1000) return 0;
    uint32_t off = addr - VCON_BASE, v = 0;
    if (is_write) memcpy(&v, data, len < 4 ? len : 4);
    pthread_mutex_lock(&mu);
    struct q *q = &d.q[d.qsel < 2 ? d.qsel : 0];
    if (!is_write) {
        switch (off) {
        case 0x00: v = 0x74726976; break;
        case 0x04: v = 2; break;
        case 0x08: v = 3; break;
        case 0x10: v = d.feat_sel == 1 ? 1 : 0; break;        /* VERSION_1 only */
        case 0x34: v = d.qsel < 2 ? QMAX : 0; break;
        case 0x44: v = q->ready; break;
        case 0x60: v = d.isr; break;
        case 0x70: v = d.status; break;
        case 0x108: v = 1; break;                              /* max_nr_ports */
        default: v = 0;
        }
        memcpy(data, &v, len < 4 ? len : 4);
    } else {
        switch (off) {
        case 0x14: d.feat_sel = v; break;
        case 0x30: d.qsel = v; break;
        case 0x38: q->num = v; break;
        case 0x44: q->ready = v; break;
        case 0x50: if (v < 2) process(v); break;
        case 0x64: d.isr &= ~v; break;
        case 0x70: d.status = v; if (!v) { memset(d.q, 0, sizeof d.q); d.isr = 0; } else process(0); break;
        case 0x80: q->desc = (q->desc & ~0xFFFFFFFFULL) | v; break;
        case 0x84: q->desc = (q->desc & 0xFFFFFFFFULL) | (uint64_t)v << 32; break;
        case 0x90: q->avail = (q->avail & ~0xFFFFFFFFULL) | v; break;
        case 0x94: q->avail = (q->avail & 0xFFFFFFFFULL) | (uint64_t)v << 32; break;
        case 0xA0: q->used = (q->used & ~0xFFFFFFFFULL) | v; break;
        case 0xA4: q->used = (q->used & 0xFFFFFFFFULL) | (uint64_t)v << 32; break;
        }
    }
    pthread_mutex_unlock(&mu);
    return 1;
}
