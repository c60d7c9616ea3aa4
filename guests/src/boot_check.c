/* boot_check: verify from inside the guest what the VMM's boot path promised (notes §1.5–§1.10).
 * cmdline: jkrun.test.ram=<bytes> jkrun.test.cpus=<n> jkrun.test.marker=xyz */
#include "guest.h"

extern uint64_t boot_entry_rsp, boot_entry_rsi;
static int failures;

static void check(const char *name, int ok, const char *fmt, uint64_t a, uint64_t b) {
    if (ok) { printf_lite("CHECK %s ok\n", name); return; }
    failures++;
    printf_lite("CHECK %s FAIL ", name);
    printf_lite(fmt, a, b);
    printf_lite("\n");
}

static int near(uint64_t v, uint64_t want) { return v == want || v == want + 1; }  /* libkrun's e820 off-by-one */

static void check_e820(void) {
    uint64_t ram = cmdline_u64("jkrun.test.ram=", 0);
    int n = e820_count();
    if (!ram) { check("e820", 0, "no jkrun.test.ram= on the cmdline (%lx %lx)", 0, 0); return; }
    const struct e820_entry *e0 = e820_get(0), *e1 = e820_get(1), *e2 = e820_get(2);
    if (n < 2) { check("e820", 0, "only %lu entries", n, 0); return; }
    if (e0->addr != 0 || e0->size != 0x9FC00 || e0->type != 1) { check("e820", 0, "entry 0 is [0x%lx, +0x%lx), want [0, 0x9fc00)", e0->addr, e0->size); return; }
    if (e1->addr != 0x100000 || e1->type != 1) { check("e820", 0, "entry 1 starts at 0x%lx type %lu, want 0x100000 RAM", e1->addr, e1->type); return; }
    if (ram <= 0xD0000000ULL) {
        if (n != 2) { check("e820", 0, "%lu entries, want 2 for RAM 0x%lx", n, ram); return; }
        if (!near(e1->addr + e1->size, ram)) { check("e820", 0, "RAM ends at 0x%lx, want 0x%lx", e1->addr + e1->size, ram); return; }
    } else {
        if (n != 3) { check("e820", 0, "%lu entries, want 3 for RAM 0x%lx", n, ram); return; }
        if (!near(e1->addr + e1->size, 0xD0000000ULL)) { check("e820", 0, "low RAM ends at 0x%lx, want 0x%lx", e1->addr + e1->size, 0xD0000000ULL); return; }
        uint64_t want = 0x100000000ULL + ram - 0xD0000000ULL;
        if (e2->addr != 0x100000000ULL || e2->type != 1 || !near(e2->addr + e2->size, want)) { check("e820", 0, "high RAM ends at 0x%lx, want 0x%lx", e2->addr + e2->size, want); return; }
    }
    check("e820", 1, "", 0, 0);
}

static void check_zero_page(void) {
    const uint8_t *z = boot_params->raw;
    uint16_t flag; uint32_t hdr, ptr, size;
    memcpy(&flag, z + 0x1FE, 2); memcpy(&hdr, z + 0x202, 4); memcpy(&ptr, z + 0x228, 4); memcpy(&size, z + 0x238, 4);
    if (flag != 0xAA55 || hdr != 0x53726448) check("zero_page", 0, "boot_flag 0x%lx header 0x%lx", flag, hdr);
    else if (ptr != 0x20000) check("zero_page", 0, "cmd_line_ptr 0x%lx, want 0x20000 (%lx)", ptr, 0);
    else if (size && size != strlen(cmdline()) + 1) check("zero_page", 0, "cmdline_size %lu, strlen+1 = %lu", size, strlen(cmdline()) + 1);
    else check("zero_page", 1, "", 0, 0);
}

static void check_marker(void) {
    char v[32];
    int ok = cmdline_get("jkrun.test.marker=", v, sizeof v) && !strncmp(v, "xyz", 4);
    check("cmdline_marker", ok, "jkrun.test.marker=xyz not found in the cmdline (len %lu)", strlen(cmdline()), 0);
}

static void check_mptable(void) {
    struct mp_info mp; mp_find(&mp);
    uint64_t want = cmdline_u64("jkrun.test.cpus=", 1);
    if (!mp.ok) { printf_lite("CHECK mptable FAIL %s\n", mp.error); failures++; return; }
    if ((uint64_t)mp.ncpus != want) { check("mptable", 0, "%lu processors, want %lu", mp.ncpus, want); return; }
    if (mp.bsp_index != 0 || mp.apic_ids[0] != 0) { check("mptable", 0, "BSP entry %ld apic id %lu", mp.bsp_index, mp.apic_ids[0]); return; }
    for (int i = 0; i < mp.ncpus; i++)
        if (mp.apic_ids[i] != i) { check("mptable", 0, "processor %lu has APIC id %lu", i, mp.apic_ids[i]); return; }
    if (mp.lapic != 0xFEE00000u || mp.ioapic != 0xFEC00000u) { check("mptable", 0, "lapic 0x%lx ioapic 0x%lx", mp.lapic, mp.ioapic); return; }
    check("mptable", 1, "", 0, 0);
}

static void check_cpuid(void) {
    uint32_t a, b, c, d; cpuid(1, 0, &a, &b, &c, &d);
    uint64_t n = cmdline_u64("jkrun.test.cpus=", 1), pow2 = 1;
    while (pow2 < n) pow2 <<= 1;
    if (!(c & (1u << 31))) check("cpuid", 0, "hypervisor bit clear (ecx 0x%lx)", c, 0);
    else if (b >> 24) check("cpuid", 0, "BSP APIC id %lu in leaf 1 EBX (0x%lx)", b >> 24, b);
    else if (n > 1 && ((b >> 16) & 0xFF) != pow2) check("cpuid", 0, "leaf 1 EBX[23:16] = %lu, want %lu", (b >> 16) & 0xFF, pow2);
    else if (lapic_id() != 0) check("cpuid", 0, "LAPIC ID register says %lu", lapic_id(), 0);
    else check("cpuid", 1, "", 0, 0);
}

static void check_cpu_state(void) {
    uint64_t cr0 = read_cr0(), cr4 = read_cr4(), efer = rdmsr(0xC0000080);
    uint16_t cs, ds, ss; __asm__("mov %%cs,%0; mov %%ds,%1; mov %%ss,%2" : "=r"(cs), "=r"(ds), "=r"(ss));
    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) g; __asm__ __volatile__("sgdt %0" : "=m"(g));
    if ((cr0 & 0x80000001) != 0x80000001) check("cpu_state", 0, "CR0 0x%lx lacks PE|PG", cr0, 0);
    else if (!(cr4 & 0x20)) check("cpu_state", 0, "CR4 0x%lx lacks PAE", cr4, 0);
    else if ((efer & 0x500) != 0x500) check("cpu_state", 0, "EFER 0x%lx lacks LME|LMA", efer, 0);
    else if (cs != 0x8 || ds != 0x10 || ss != 0x10) check("cpu_state", 0, "selectors cs 0x%lx ds/ss 0x%lx", cs, (uint64_t)ds << 16 | ss);
    else if (g.base != 0x500 || g.limit != 31) check("cpu_state", 0, "GDTR base 0x%lx limit %lu", g.base, g.limit);
    else if (boot_entry_rsp != 0x8FF0 || boot_entry_rsi != 0x7000) check("cpu_state", 0, "entry RSP 0x%lx RSI 0x%lx", boot_entry_rsp, boot_entry_rsi);
    else check("cpu_state", 1, "", 0, 0);
}

static void check_boot_paging(void) {
    uint64_t cr3 = read_cr3() & ~0xFFFULL;
    const uint64_t *pml4 = (const uint64_t *)(uintptr_t)cr3;
    if (cr3 != 0x9000) { check("boot_pagetables", 0, "CR3 0x%lx, want 0x9000", cr3, 0); return; }
    if ((pml4[0] & ~0xFFFULL) != 0xA000 || !(pml4[0] & 1)) { check("boot_pagetables", 0, "PML4[0] 0x%lx%lx", pml4[0], 0); return; }
    const uint64_t *pdpt = (const uint64_t *)0xA000, *pd = (const uint64_t *)0xB000;
    if ((pdpt[0] & ~0xFFFULL) != 0xB000 || !(pdpt[0] & 1)) { check("boot_pagetables", 0, "PDPT[0] 0x%lx%lx", pdpt[0], 0); return; }
    for (uint64_t i = 0; i < 512; i++)
        if ((pd[i] & ~0x60ULL) != ((i << 21) | 0x83)) { check("boot_pagetables", 0, "PD[%lu] = 0x%lx", i, pd[i]); return; }
    check("boot_pagetables", 1, "", 0, 0);
}

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    check_cpu_state();
    check_boot_paging();          /* before we replace the boot page tables */
    paging_init();
    idt_init();
    check_zero_page();
    check_e820();
    check_marker();
    check_mptable();
    check_cpuid();
    printf_lite("BOOT_CHECK %s\n", failures ? "FAIL" : "ok");
    return failures ? 1 : 0;
}
