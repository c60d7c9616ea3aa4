/* memtop: pattern-test the top 4 KiB of RAM and a few pages above 4 GiB. */
#include "guest.h"

static int test_page(uint64_t a) {
    volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)a;
    for (int i = 0; i < 512; i++) p[i] = (a + 8 * i) ^ 0x5A5A5A5AA5A5A5A5ULL;
    for (int i = 0; i < 512; i++) if (p[i] != ((a + 8 * i) ^ 0x5A5A5A5AA5A5A5A5ULL)) return 0;
    for (int i = 0; i < 512; i++) p[i] = ~(a + 8 * i);
    for (int i = 0; i < 512; i++) if (p[i] != ~(a + 8 * i)) return 0;
    return 1;
}

static int is_ram(uint64_t a) {
    for (int i = 0; i < e820_count(); i++) {
        const struct e820_entry *e = e820_get(i);
        if (e->type == 1 && a >= e->addr && a + 4096 <= e->addr + e->size) return 1;
    }
    return 0;
}

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    paging_init();
    idt_init();
    uint64_t top = ram_top();
    printf_lite("TOP 0x%lx\n", top - 1);
    if (top > ((uint64_t)IDMAP_GIB << 30)) fail("RAM above the 32 GiB identity map");
    uint64_t last = (top & ~0xFFFULL) - 0x1000;
    if (!is_ram(last)) last -= 0x1000;
    int bad = 0;
    uint64_t probes[6] = { last, 0x100000000ULL, 0x140000000ULL, 0x180000000ULL, 0x1C0000000ULL, 0 };
    for (int i = 0; probes[i]; i++) {
        if (i > 0 && !is_ram(probes[i])) continue;
        int ok = test_page(probes[i]);
        printf_lite("MEM 0x%lx %s\n", probes[i], ok ? "ok" : "FAIL");
        bad |= !ok;
    }
    return bad;
}
