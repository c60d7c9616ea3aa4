/* triple_fault: an empty IDT plus #UD -> #DF -> triple fault -> KVM_EXIT_SHUTDOWN. */
#include "guest.h"
int guest_main(struct boot_params_lite *zp) {
    (void)zp;
    puts("TRIPLE_FAULT\n");
    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) d = { 0, 0 };
    __asm__ __volatile__("lidt %0; ud2" :: "m"(d) : "memory");
    fail("survived a triple fault");
}
