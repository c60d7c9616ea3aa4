/* irq: interrupt delivery without any virtio device.
 *   1. LAPIC timer -> IDT vector 0x40
 *   2. PIT channel 0 (in-kernel, KVM_CREATE_PIT2) -> GSI 0 -> IOAPIC -> LAPIC -> vector 0x20 */
#include "guest.h"

static volatile uint32_t pit_hits[2];
static void pit_pin0(int v) { (void)v; pit_hits[0]++; }
static void pit_pin2(int v) { (void)v; pit_hits[1]++; }

int guest_main(struct boot_params_lite *zp) {
    guest_cpu_init(zp);
    int bad = 0;

    lapic_timer_periodic(0x40, 1000000);            /* 1 ms at a 1 GHz APIC bus */
    uint64_t t0 = rdtsc();
    for (;;) {
        cli();
        if (lapic_ticks >= 5 || rdtsc() - t0 > 3000000000ULL) break;
        sti_hlt();
    }
    sti();
    if (lapic_ticks >= 5) printf_lite("CHECK lapic_timer ok ticks=%lu\n", lapic_ticks);
    else { printf_lite("CHECK lapic_timer FAIL ticks=%lu (no timer interrupt through the IDT)\n", lapic_ticks); bad = 1; }

    /* the LAPIC timer keeps running as a watchdog for the hlt below */
    irq_register(0x20, pit_pin0);
    irq_register(0x22, pit_pin2);
    ioapic_route(0, 0x20, 0);
    ioapic_route(2, 0x22, 0);
    outb(0x43, 0x34);                               /* channel 0, lo/hi, mode 2 */
    outb(0x40, 0x9C); outb(0x40, 0x2E);             /* 11932: ~100 Hz */
    uint64_t start = lapic_ticks;
    t0 = rdtsc();
    for (;;) {
        cli();
        if (pit_hits[0] + pit_hits[1] >= 3 || lapic_ticks - start > 3000 || rdtsc() - t0 > 6000000000ULL) break;
        if (lapic_ticks >= 5) sti_hlt(); else { sti(); pause(); }
    }
    ioapic_mask(0); ioapic_mask(2);
    lapic_timer_stop();
    if (pit_hits[0] + pit_hits[1] >= 3)
        printf_lite("CHECK pit_ioapic ok pin0=%u pin2=%u\n", pit_hits[0], pit_hits[1]);
    else { printf_lite("CHECK pit_ioapic FAIL pin0=%u pin2=%u\n", pit_hits[0], pit_hits[1]); bad = 1; }
    return bad;
}
