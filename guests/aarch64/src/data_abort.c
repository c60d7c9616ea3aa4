/* data_abort: a load pair from an address outside RAM and every device (no syndrome for the hypervisor to decode
 * into an MMIO access): the VMM must stop the VM with a reason naming the address. */
#include "guest.h"
int guest_main(const void *fdt) {
    (void)fdt;
    printf_lite("LDP\n");
    uint64_t a, b;
    __asm__ volatile("ldp %0, %1, [%2]" : "=r"(a), "=r"(b) : "r"(0x50000000UL) : "memory");
    printf_lite("UNREACHED %lx %lx\n", a, b);
    return 3;
}
