/* guest.h — the jkrun test-guest library. Every guest defines
 *     int guest_main(struct boot_params_lite *zp);
 * and returns its exit status (or calls exit_status / fail). */
#ifndef GUEST_H
#define GUEST_H
#include <stdint.h>
#include <stddef.h>
#include "io.h"
#include "report.h"

/* ---- boot info (zero page at 0x7000, MP table at 0x9FC00) ---- */
struct e820_entry { uint64_t addr, size; uint32_t type; } __attribute__((packed));
struct boot_params_lite { uint8_t raw[4096]; };   /* use the accessors below */

int guest_main(struct boot_params_lite *zp);

extern struct boot_params_lite *boot_params;       /* set by bootinfo_init */
void bootinfo_init(struct boot_params_lite *zp);
int e820_count(void);
const struct e820_entry *e820_get(int i);
uint64_t ram_top(void);                            /* highest RAM end (exclusive) from e820 */
const char *cmdline(void);
/* value of "key=" on the cmdline copied into buf; returns 1 if found */
int cmdline_get(const char *key, char *buf, size_t n);
uint64_t cmdline_u64(const char *key, uint64_t dflt);
int cmdline_has(const char *word);

struct mp_info { int ok; int ncpus; uint8_t apic_ids[64]; int bsp_index; uint32_t lapic; uint32_t ioapic; const char *error; };
void mp_find(struct mp_info *out);
/* the MP table's interrupt source for IOAPIC pin `pin`: 1 level-triggered, 0 edge (or conforming to ISA), -1 none */
int mp_irq_level(int pin);

/* ---- small libc ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
uint64_t parse_u64(const char *s, const char **end);   /* decimal or 0x hex */
void delay_loops(uint64_t n);

/* ---- paging: identity map 0..32 GiB with 2 MiB pages, 3..4 GiB uncached ---- */
#define IDMAP_GIB 32
void paging_init(void);

/* ---- IDT ---- */
struct irq_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error, rip, cs, rflags, rsp, ss;
};
typedef void (*irq_handler_t)(int vector);
void idt_init(void);          /* BSP: build + load; APs: idt_load */
void idt_load(void);
void irq_register(int vector, irq_handler_t h);   /* vectors 0x20..0xFE */

/* ---- LAPIC / IOAPIC / PIC ---- */
#define LAPIC_BASE 0xFEE00000UL
#define IOAPIC_BASE 0xFEC00000UL
#define SPURIOUS_VECTOR 0xFF
void lapic_enable(void);
void lapic_eoi(void);
uint32_t lapic_id(void);
int lapic_send_ipi(uint32_t apic_id, uint32_t icr_low);   /* 0 = delivered */
void lapic_timer_periodic(int vector, uint32_t count);
void lapic_timer_stop(void);
extern volatile uint64_t lapic_ticks;
#define TICK_MS 10                          /* lapic_ticks period once virtio waits have started the timer */
void ioapic_route(int gsi, int vector, uint32_t dest_apic);
void ioapic_route_level(int gsi, int vector, uint32_t dest_apic);
#define IOAPIC_PINS 24
void ioapic_mask(int gsi);
void pic_mask_all(void);

/* ---- SMP ---- */
void ap_main(uint32_t apic_id);            /* defined by the guest */
int smp_start_ap(uint32_t apic_id);        /* 0 = the AP reached long mode */
/* Starts every AP of the MP table but the caller, one after another, then waits up to ~3 s of TSC for *up (the
 * caller's count of CPUs running, the BSP included; each AP adds itself) to reach mp->ncpus; returns *up. */
uint32_t smp_start_all(const struct mp_info *mp, uint32_t me, volatile uint32_t *up);
/* The CPU set-up every interrupt-using guest starts with: boot info, paging, IDT, 8259s masked, LAPIC on. */
void guest_cpu_init(struct boot_params_lite *zp);
extern volatile uint32_t ap_started;

/* ---- virtio-mmio v2 ---- */
#define VIRTIO_MAX_QUEUES 5
#define VQ_SIZE 16
struct vring_desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct vring_avail { uint16_t flags, idx, ring[VQ_SIZE]; uint16_t used_event; };
struct vring_used_elem { uint32_t id, len; };
struct vring_used { uint16_t flags, idx; struct vring_used_elem ring[VQ_SIZE]; uint16_t avail_event; };
struct vq {
    int index, size;
    struct vring_desc *desc; struct vring_avail *avail; volatile struct vring_used *used;
    uint16_t free_head, num_free, last_used;
};
struct virtio_dev {
    uintptr_t base; int irq; uint32_t device_id;
    uint64_t device_features, driver_features;
    struct vq vq[VIRTIO_MAX_QUEUES]; int nqueues;
    volatile uint32_t irq_count, isr_bits;
    int level;                                   /* its line is level-triggered (shared), per the MP table */
};
struct vbuf { void *addr; uint32_t len; int writable; };
/* find the k-th `virtio_mmio.device=` on the cmdline: 0 ok, -1 none announced */
int virtio_find(int k, uintptr_t *base, int *irq);
/* probe + negotiate; wanted = feature bits wanted besides VERSION_1. 0 ok, else an error string printed */
const char *virtio_init(struct virtio_dev *d, uintptr_t base, int irq, uint32_t want_id, uint64_t wanted);
const char *virtio_setup_queue(struct virtio_dev *d, int q);
/* the same on the caller's 4 KiB-aligned page (zeroed first), for a driver that resets and sets up again */
const char *virtio_setup_queue_on(struct virtio_dev *d, int q, void *page);
const char *virtio_driver_ok(struct virtio_dev *d);
int virtio_add(struct virtio_dev *d, int q, const struct vbuf *bufs, int n);  /* head id or -1 */
void virtio_notify(struct virtio_dev *d, int q);
/* wait (sti;hlt, woken by the device IRQ or the LAPIC watchdog timer) until a used entry is
 * available; returns the used element in *out. Returns 0 ok, or an error string. */
const char *virtio_wait_used(struct virtio_dev *d, int q, struct vring_used_elem *out, uint64_t timeout_ms);
/* IDT + LAPIC + IOAPIC + PIC setup for d->irq (0..23): level-triggered where the MP table says so, and then shared
 * with the other devices on that pin (the handler reads and acknowledges each one's InterruptStatus) */
void virtio_enable_irq(struct virtio_dev *d);
/* takes one used element of queue q if there is one (1, in *out, its chain freed), else 0; no waiting */
int virtio_take_used(struct virtio_dev *d, int q, struct vring_used_elem *out);
/* interrupts on pin `pin` that found no device on it with InterruptStatus bits */
uint32_t virtio_spurious(int pin);

#endif
