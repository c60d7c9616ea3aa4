/* halt: cli; hlt forever. With an in-kernel LAPIC KVM keeps the vCPU halted in the kernel. */
#include "guest.h"
int guest_main(struct boot_params_lite *zp) {
    (void)zp;
    puts("HALT\n");
    for (;;) { cli(); hlt(); }
}
