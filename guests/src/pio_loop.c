/* pio_loop: N x outb to port 0x80 (no device: the VMM ignores it), to measure exit round trips.
 * cmdline: jkrun.test.n=<N> (default 1000) */
#include "guest.h"
int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    uint64_t n = cmdline_u64("jkrun.test.n=", 1000);
    uint64_t t0 = rdtsc();
    for (uint64_t i = 0; i < n; i++) outb(0x80, (uint8_t)i);
    uint64_t dt = rdtsc() - t0;
    printf_lite("PIO %lu tsc_per_exit %lu\n", n, n ? dt / n : 0);
    return 0;
}
