/* initrd: finds the initramfs through the zero page (ramdisk_image 0x218, ramdisk_size 0x21C, ext_ramdisk_image 0xC0,
 * ext_ramdisk_size 0xC4) as Linux's get_ramdisk_image/get_ramdisk_size do, checks that it lies in e820 RAM and
 * above this guest, and reports its CRC-32 (IEEE, as java.util.zip.CRC32) so the host can compare it with the file. */
#include "guest.h"

extern char __bss_end[];   /* the guest image's end (lib/link.ld) */

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static int in_ram(uint64_t a, uint64_t len) {
    for (int i = 0; i < e820_count(); i++) {
        const struct e820_entry *e = e820_get(i);
        if (e->type == 1 && a >= e->addr && a + len <= e->addr + e->size) return 1;
    }
    return 0;
}

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    paging_init();
    idt_init();
    uint32_t lo, size, hi, hisize;
    memcpy(&lo, zp->raw + 0x218, 4);
    memcpy(&size, zp->raw + 0x21C, 4);
    memcpy(&hi, zp->raw + 0xC0, 4);
    memcpy(&hisize, zp->raw + 0xC4, 4);
    uint64_t addr = ((uint64_t)hi << 32) | lo;
    uint64_t len = ((uint64_t)hisize << 32) | size;
    if (len == 0) {
        printf_lite("INITRD none\n");
        return addr == 0 ? 0 : 1;
    }
    printf_lite("INITRD 0x%lx size %lu\n", addr, len);
    if (addr & 0xFFF) fail("initrd not page-aligned");
    if (addr < (uint64_t)(uintptr_t)__bss_end) fail("initrd overlaps the guest image");
    if (!in_ram(addr, len)) fail("initrd not inside one e820 RAM range");
    if (addr + len > ((uint64_t)IDMAP_GIB << 30)) fail("initrd above the 32 GiB identity map");
    crc_init();
    uint32_t c = 0xFFFFFFFFu;
    const volatile uint8_t *p = (const volatile uint8_t *)(uintptr_t)addr;
    for (uint64_t i = 0; i < len; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    printf_lite("CRC 0x%x\n", c ^ 0xFFFFFFFFu);
    printf_lite("TOP 0x%lx\n", ram_top());
    return 0;
}
