/* psci_off: powers the machine off with PSCI SYSTEM_OFF (or resets it with jkrun.test.reset=1). */
#include "guest.h"
int guest_main(const void *fdt) {
    if (fdt_check(fdt)) fail("no device tree at x0");
    cmdline_init(fdt);
    int reset = cmdline_u64("jkrun.test.reset=", 0) != 0;
    printf_lite(reset ? "RESET\n" : "OFF\n");
    psci_call(reset ? PSCI_SYSTEM_RESET : PSCI_SYSTEM_OFF, 0, 0, 0);
    fail("PSCI returned");
}
