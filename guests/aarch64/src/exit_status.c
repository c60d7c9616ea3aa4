/* exit_status: exits with jkrun.test.status=<n> (default 0), read from the device tree's bootargs. */
#include "guest.h"
int guest_main(const void *fdt) {
    if (fdt_check(fdt)) fail("no device tree at x0");
    cmdline_init(fdt);
    uint64_t s = cmdline_u64("jkrun.test.status=", 0);
    printf_lite("EXIT %lu\n", s);
    return (int)s;
}
