/* bad_insn: cmpxchg16b, which kvm-pvm's emulator cannot emulate (KVM_EXIT_INTERNAL_ERROR).
 * On hardware virtualisation it simply works. */
#include "guest.h"
static uint64_t buf[2] __attribute__((aligned(16))) = { 1, 2 };
int guest_main(struct boot_params_lite *zp) {
    (void)zp;
    puts("BAD_INSN cmpxchg16b\n");
    uint64_t lo = 1, hi = 2, nlo = 3, nhi = 4;
    uint8_t ok;
    __asm__ __volatile__("lock cmpxchg16b %1; sete %0"
                         : "=q"(ok), "+m"(*(volatile uint64_t (*)[2])buf), "+a"(lo), "+d"(hi)
                         : "b"(nlo), "c"(nhi) : "memory", "cc");
    if (!ok || buf[0] != 3 || buf[1] != 4) fail("cmpxchg16b gave a wrong result");
    puts("bad_insn survived\n");
    return 0;
}
