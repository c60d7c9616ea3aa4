/* power_button: waits for the host's orderly-stop request (a 32-bit IN from the exit port 0xF4
 * reads 1 once stop() was called), then exits with jkrun.test.status=<n> (default 0). With
 * jkrun.test.ignore_stop it never answers, for stop()'s forced path. */
#include "guest.h"
#include "io.h"
int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    uint64_t s = cmdline_u64("jkrun.test.status=", 0);
    int ignore = cmdline_has("jkrun.test.ignore_stop");
    puts("WAITING\n");
    for (;;) {
        if (!ignore && inl(0xF4) == 1) {
            printf_lite("STOP REQUESTED\n");
            return (int)s;
        }
        for (int i = 0; i < 2000; i++)
            __asm__ __volatile__("pause" ::: "memory");
    }
}
