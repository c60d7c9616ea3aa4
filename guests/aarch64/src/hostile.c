/* hostile: what a hostile aarch64 guest can do to the VMM's devices without help from the kernel — every access width
 * at odd offsets of the RTC, the debug UART, the test exit page (all but the 32-bit write at 0 that would end the
 * VM), a virtio-mmio window, the GIC, unmapped device space and addresses past RAM; PSCI calls with made-up function
 * ids and CPU_ON of CPUs that do not exist or at entry points outside RAM. The VMM must answer each (reads of
 * nothing float high) and keep running: prints "HOSTILE DONE <n> accesses" and exits 0 through the exit device. */
#include "guest.h"

static uint64_t seed = 0x9E3779B97F4A7C15UL;
static uint64_t rnd(void) { seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17; return seed; }

static uint64_t accesses;
static void poke(uint64_t a, int width, int write, uint64_t v) {
    accesses++;
    switch (width) {
    case 1: if (write) *(volatile uint8_t *)a = v; else (void)*(volatile uint8_t *)a; break;
    case 2: if (!(a & 1)) { if (write) *(volatile uint16_t *)a = v; else (void)*(volatile uint16_t *)a; } break;
    case 4: if (!(a & 3)) { if (write) *(volatile uint32_t *)a = v; else (void)*(volatile uint32_t *)a; } break;
    default: if (!(a & 7)) { if (write) *(volatile uint64_t *)a = v; else (void)*(volatile uint64_t *)a; } break;
    }
}

static void sweep(uint64_t base, uint64_t size, int rounds, int writes) {
    for (int i = 0; i < rounds; i++) {
        uint64_t off = rnd() % size;
        int w = 1 << (rnd() % 4);
        poke(base + (off & ~(uint64_t)(w - 1)), w, writes && (rnd() & 1), rnd());
    }
}

int guest_main(const void *fdt) {
    if (fdt_check(fdt)) fail("no device tree at x0");
    /* the RTC and the debug UART: everything, both ways */
    sweep(0x0A005000UL, 0x1000, 4000, 1);
    sweep(REPORT_UART + 8, 0x1000 - 8, 2000, 1);   /* not the data register: that is our report channel */
    /* the exit page: reads anywhere, writes everywhere but the 32-bit word at 0 */
    sweep(TEST_EXIT, 0x1000, 1000, 0);
    for (int i = 0; i < 1000; i++) {
        uint64_t off = 4 + rnd() % (0x1000 - 12);
        poke(TEST_EXIT + (off & ~7UL), 1 << (rnd() % 4), 1, rnd());
    }
    poke(TEST_EXIT, 1, 1, 7); poke(TEST_EXIT, 2, 1, 7); poke(TEST_EXIT, 8, 1, 7);
    /* a virtio-mmio window (the disk's, if the VM has one): registers and the config space, reads only past
     * QueueNotify so the device is confused, not driven */
    sweep(0x0A010000UL, 0x1000, 2000, 0);
    poke(0x0A010000UL + 0x70, 4, 1, 0xFF);                    /* Status: a driver that sets every bit */
    poke(0x0A010000UL + 0x30, 4, 1, 0x7FFFFFFF);              /* QueueSel far out of range */
    poke(0x0A010000UL + 0x38, 4, 1, 0xFFFFFFFF);              /* QueueNum */
    poke(0x0A010000UL + 0x44, 4, 1, 1);                       /* QueueReady with no queue */
    poke(0x0A010000UL + 0x50, 4, 1, 0x12345);                 /* QueueNotify of a queue that is not there */
    /* unmapped device space, the GIC distributor (KVM's), and past RAM */
    sweep(0x0A100000UL, 0x01000000UL, 1000, 1);
    for (int i = 0; i < 500; i++) poke(0x09FF0000UL + ((rnd() % 0x10000) & ~3UL), 4, 0, 0);   /* KVM's: 32-bit */
    sweep(0x4000000000UL, 0x100000, 500, 1);
    /* PSCI: made-up functions, CPUs that do not exist, entry points outside RAM */
    for (int i = 0; i < 50; i++) psci_call(0x84000000UL | (rnd() & 0xFFFF), rnd(), rnd(), rnd());
    psci_call(PSCI_CPU_ON, 0xFFFFFF, (uint64_t)secondary_entry, 0);
    psci_call(PSCI_CPU_ON, 0x100, 0x10, 0);
    psci_call(PSCI_CPU_ON, 0, 0x80000000UL, 0);                /* CPU 0 is us: already on */
    printf_lite("HOSTILE DONE %lu accesses\n", accesses);
    return 0;
}
