#include "guest.h"

/* PML4 -> one PDPT -> IDMAP_GIB page directories of 2 MiB pages. */
static uint64_t pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pd[IDMAP_GIB][512] __attribute__((aligned(4096)));

#define P 1
#define RW 2
#define PWT 8
#define PCD 0x10
#define PS 0x80

void paging_init(void) {
    for (uint64_t g = 0; g < IDMAP_GIB; g++) {
        uint64_t attr = P | RW | PS | (g == 3 ? PCD | PWT : 0);   /* 3..4 GiB: MMIO, uncached */
        for (uint64_t i = 0; i < 512; i++) pd[g][i] = (g << 30) | (i << 21) | attr;
        pdpt[g] = (uint64_t)(uintptr_t)pd[g] | P | RW;
    }
    pml4[0] = (uint64_t)(uintptr_t)pdpt | P | RW;
    write_cr3((uint64_t)(uintptr_t)pml4);
}
