/* exit_status: exits with jkrun.test.status=<n> (default 0). */
#include "guest.h"
int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    uint64_t s = cmdline_u64("jkrun.test.status=", 0);
    printf_lite("EXIT %lu\n", s);
    return (int)s;
}
