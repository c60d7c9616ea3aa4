/* LAPIC (xAPIC MMIO at 0xFEE00000), IOAPIC (0xFEC00000) and the 8259 PICs. */
#include "guest.h"

#define LAPIC(r) (LAPIC_BASE + (r))
enum { L_ID = 0x20, L_TPR = 0x80, L_EOI = 0xB0, L_SVR = 0xF0, L_ICRLO = 0x300, L_ICRHI = 0x310,
       L_TIMER = 0x320, L_TICR = 0x380, L_TDCR = 0x3E0 };

volatile uint64_t lapic_ticks;

uint32_t lapic_id(void) { return readl(LAPIC(L_ID)) >> 24; }
void lapic_eoi(void) { writel(LAPIC(L_EOI), 0); }

void lapic_enable(void) {
    uint64_t base = rdmsr(0x1B);
    if (!(base & (1 << 11))) wrmsr(0x1B, base | (1 << 11));   /* global enable */
    writel(LAPIC(L_TPR), 0);
    writel(LAPIC(L_SVR), readl(LAPIC(L_SVR)) | 0x100 | SPURIOUS_VECTOR);
}

int lapic_send_ipi(uint32_t apic_id, uint32_t icr_low) {
    writel(LAPIC(L_ICRHI), apic_id << 24);
    writel(LAPIC(L_ICRLO), icr_low);
    for (int i = 0; i < 100000; i++)
        if (!(readl(LAPIC(L_ICRLO)) & (1 << 12))) return 0;    /* delivery status idle */
    return -1;
}

static void tick(int v) { (void)v; lapic_ticks++; }

void lapic_timer_periodic(int vector, uint32_t count) {
    irq_register(vector, tick);
    writel(LAPIC(L_TDCR), 0xB);                    /* divide by 1 */
    writel(LAPIC(L_TIMER), (1 << 17) | vector);    /* periodic */
    writel(LAPIC(L_TICR), count);
}
void lapic_timer_stop(void) { writel(LAPIC(L_TIMER), 1 << 16); writel(LAPIC(L_TICR), 0); }

static void ioapic_write(uint32_t reg, uint32_t v) { writel(IOAPIC_BASE, reg); writel(IOAPIC_BASE + 0x10, v); }

/* GSI n -> vector: fixed delivery, physical destination, edge-triggered, active high, unmasked */
void ioapic_route(int gsi, int vector, uint32_t dest_apic) {
    ioapic_write(0x11 + 2 * gsi, dest_apic << 24);
    ioapic_write(0x10 + 2 * gsi, vector & 0xFF);
}
/* the same, level-triggered (bit 15), active high: the line stays up until every device on it was acknowledged */
void ioapic_route_level(int gsi, int vector, uint32_t dest_apic) {
    ioapic_write(0x11 + 2 * gsi, dest_apic << 24);
    ioapic_write(0x10 + 2 * gsi, (vector & 0xFF) | 1 << 15);
}
void ioapic_mask(int gsi) { ioapic_write(0x10 + 2 * gsi, 1 << 16); }

void pic_mask_all(void) { outb(0x21, 0xFF); outb(0xA1, 0xFF); }
