/* smp: start every AP listed in the MP table with INIT/SIPI; each prints "APIC <id>". */
#include "guest.h"

static volatile uint32_t cpus_up = 1;

void ap_main(uint32_t apic_id) {
    printf_lite("APIC %u\n", apic_id);
    __atomic_add_fetch(&cpus_up, 1, __ATOMIC_SEQ_CST);
}

int guest_main(struct boot_params_lite *zp) {
    guest_cpu_init(zp);
    struct mp_info mp; mp_find(&mp);
    if (!mp.ok) fail(mp.error);
    uint32_t a, b, c, d; cpuid(1, 0, &a, &b, &c, &d);
    uint32_t me = b >> 24;
    printf_lite("APIC %u\n", me);
    smp_start_all(&mp, me, &cpus_up);
    printf_lite("CPUS %u\n", cpus_up);
    return cpus_up == (uint32_t)mp.ncpus ? 0 : 1;
}
