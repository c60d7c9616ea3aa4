/* Start APs the way Linux does: INIT, then STARTUP IPI(s) with the trampoline's page number. */
#include "guest.h"

#define TRAMP 0x10000
#define AP_STACK 8192
#define MAX_AP_STACKS 32

extern const uint8_t trampoline_start[], trampoline_end[], tr_cr3[], tr_stack[], tr_entry[];
static uint8_t ap_stacks[MAX_AP_STACKS][AP_STACK] __attribute__((aligned(16)));
volatile uint32_t ap_started;
static int copied;

#define TR_FIELD(sym) ((volatile uint64_t *)(uintptr_t)(TRAMP + ((sym) - trampoline_start)))

__attribute__((weak)) void ap_main(uint32_t apic_id) { (void)apic_id; }

static void smp_ap_entry(void) {
    idt_load();
    uint32_t a, b, c, d; cpuid(1, 0, &a, &b, &c, &d);
    __atomic_add_fetch(&ap_started, 1, __ATOMIC_SEQ_CST);
    ap_main(b >> 24);
    for (;;) { cli(); hlt(); }
}

static int wait_started(uint32_t before, uint64_t tsc_budget) {
    uint64_t t0 = rdtsc();
    while (rdtsc() - t0 < tsc_budget) {
        if (__atomic_load_n(&ap_started, __ATOMIC_ACQUIRE) != before) return 1;
        pause();
    }
    return 0;
}

int smp_start_ap(uint32_t apic_id) {
    static int slot;
    if (slot >= MAX_AP_STACKS) return -2;
    if (!copied) { memcpy((void *)TRAMP, trampoline_start, trampoline_end - trampoline_start); copied = 1; }
    *TR_FIELD(tr_cr3) = read_cr3();
    *TR_FIELD(tr_stack) = (uint64_t)(uintptr_t)&ap_stacks[slot++][AP_STACK];
    *TR_FIELD(tr_entry) = (uint64_t)(uintptr_t)smp_ap_entry;
    uint32_t before = ap_started;
    __asm__ __volatile__("lock; addl $0, (%%rsp)" ::: "memory");
    if (lapic_send_ipi(apic_id, 0x4500)) return -3;             /* INIT, level assert */
    delay_loops(1000);
    for (int sipi = 0; sipi < 2; sipi++) {
        if (lapic_send_ipi(apic_id, 0x4600 | (TRAMP >> 12))) return -4;  /* STARTUP, vector 0x10 */
        if (wait_started(before, 2000000000ULL)) return 0;   /* ~1-2 s of TSC */
    }
    return -1;
}

uint32_t smp_start_all(const struct mp_info *mp, uint32_t me, volatile uint32_t *up) {
    for (int i = 0; i < mp->ncpus; i++) {
        if (mp->apic_ids[i] == me) continue;
        int rc = smp_start_ap(mp->apic_ids[i]);
        if (rc) printf_lite("AP %u did not start (rc %d)\n", mp->apic_ids[i], rc);
    }
    uint64_t t0 = rdtsc();
    while (*up < (uint32_t)mp->ncpus && rdtsc() - t0 < 3000000000ULL) pause();
    return *up;
}

void guest_cpu_init(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    paging_init();
    idt_init();
    pic_mask_all();
    lapic_enable();
}
