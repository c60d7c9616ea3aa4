#include "guest.h"

struct idt_gate { uint16_t off0, sel; uint8_t ist, type; uint16_t off1; uint32_t off2, zero; } __attribute__((packed));
static struct idt_gate idt[256] __attribute__((aligned(16)));
static irq_handler_t handlers[256];
extern const uint64_t isr_table[256];

void idt_load(void) {
    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) d = { sizeof idt - 1, (uint64_t)(uintptr_t)idt };
    __asm__ __volatile__("lidt %0" :: "m"(d) : "memory");
}

void idt_init(void) {
    uint16_t cs; __asm__ __volatile__("mov %%cs, %0" : "=r"(cs));
    for (int v = 0; v < 256; v++) {
        uint64_t a = isr_table[v];
        idt[v] = (struct idt_gate){ .off0 = a & 0xFFFF, .sel = cs, .ist = 0, .type = 0x8E,
                                    .off1 = (a >> 16) & 0xFFFF, .off2 = a >> 32 };
    }
    idt_load();
}

void irq_register(int vector, irq_handler_t h) { handlers[vector & 0xFF] = h; }

void isr_dispatch(struct irq_frame *f) {
    int v = (int)f->vector;
    if (v < 32) {
        uint64_t cr2; __asm__ __volatile__("mov %%cr2, %0" : "=r"(cr2));
        printf_lite("EXCEPTION vector=%d error=0x%lx rip=0x%lx cr2=0x%lx\n", v, f->error, f->rip, cr2);
        exit_status(0x80 + v);
    }
    if (v == SPURIOUS_VECTOR) return;               /* no EOI for spurious */
    if (handlers[v]) handlers[v](v);
    else printf_lite("IRQ vector %d without handler\n", v);
    lapic_eoi();
}
