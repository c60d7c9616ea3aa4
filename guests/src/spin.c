/* spin: never exits; burns ring-0 CPU (for timeouts / forced stop). */
#include "guest.h"
int guest_main(struct boot_params_lite *zp) {
    (void)zp;
    puts("SPIN\n");
    for (;;) __asm__ __volatile__("" ::: "memory");
}
