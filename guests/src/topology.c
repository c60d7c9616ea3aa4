/* topology: every vCPU (the BSP, then each AP from the MP table) prints what CPUID tells it about where it sits:
 *   TOPO apic=<leaf 1 EBX[31:24]> htt=<leaf 1 EDX[28]> x2apic=<0xB.0 EDX> smt_shift=<0xB.0 EAX[4:0]>
 *        smt=<0xB.0 EBX[15:0]> smt_type=<0xB.0 ECX[15:8]> pkg=<0xB.1 EBX[15:0]> pkg_type=<0xB.1 ECX[15:8]>
 *        core=<0x8000001E EBX[7:0]> tpc=<0x8000001E EBX[15:8]> l1=<sharing of the L1 data cache>
 *        l3=<sharing of the L3> cores=<leaf 4 EAX[31:26] (Intel) or 0x80000008 ECX[7:0] (AMD)>
 * where the sharing fields are the deterministic cache leaf's EAX[25:14] (leaf 4 on Intel, 0x8000001D on AMD) and
 * a leaf that does not exist prints as -1. One line at a time: the lines are taken under a spinlock. */
#include "guest.h"
#include "io.h"

static volatile uint32_t cpus_up = 1;
static volatile int print_lock;
static int amd;
static uint32_t max_basic, max_ext;

static int32_t cache_sharing(uint32_t level) {
    uint32_t leaf = amd ? 0x8000001D : 4;
    if (amd ? max_ext < leaf : max_basic < leaf) return -1;
    for (uint32_t sub = 0; sub < 16; sub++) {
        uint32_t a, b, c, d; cpuid(leaf, sub, &a, &b, &c, &d);
        uint32_t type = a & 0x1F;
        if (type == 0) break;
        if (((a >> 5) & 7) == level && type != 2 /* not the instruction cache */)
            return (int32_t)((a >> 14) & 0xFFF);
    }
    return -1;
}

static void report(void) {
    uint32_t a, b, c, d;
    cpuid(1, 0, &a, &b, &c, &d);
    uint32_t apic = b >> 24, htt = (d >> 28) & 1;
    int32_t x2 = -1, shift = -1, smt = -1, smt_type = -1, pkg = -1, pkg_type = -1, core = -1, tpc = -1, cores = -1;
    if (max_basic >= 0xB) {
        cpuid(0xB, 0, &a, &b, &c, &d);
        x2 = (int32_t)d; shift = (int32_t)(a & 0x1F); smt = (int32_t)(b & 0xFFFF); smt_type = (int32_t)((c >> 8) & 0xFF);
        cpuid(0xB, 1, &a, &b, &c, &d);
        pkg = (int32_t)(b & 0xFFFF); pkg_type = (int32_t)((c >> 8) & 0xFF);
    }
    if (amd && max_ext >= 0x8000001E) {
        cpuid(0x8000001E, 0, &a, &b, &c, &d);
        core = (int32_t)(b & 0xFF); tpc = (int32_t)((b >> 8) & 0xFF);
    }
    if (amd && max_ext >= 0x80000008) {
        cpuid(0x80000008, 0, &a, &b, &c, &d);
        cores = (int32_t)(c & 0xFF);
    } else if (!amd && max_basic >= 4) {
        cpuid(4, 0, &a, &b, &c, &d);
        cores = (int32_t)(a >> 26);
    }
    int32_t l1 = cache_sharing(1), l3 = cache_sharing(3);
    while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE)) pause();
    printf_lite("TOPO apic=%u htt=%u x2apic=%d smt_shift=%d smt=%d smt_type=%d", apic, htt, x2, shift, smt, smt_type);
    printf_lite(" pkg=%d pkg_type=%d core=%d tpc=%d l1=%d l3=%d cores=%d\n", pkg, pkg_type, core, tpc, l1, l3, cores);
    __atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
}

void ap_main(uint32_t apic_id) {
    (void)apic_id;
    report();
    __atomic_add_fetch(&cpus_up, 1, __ATOMIC_SEQ_CST);
}

int guest_main(struct boot_params_lite *zp) {
    guest_cpu_init(zp);
    uint32_t a, b, c, d;
    cpuid(0, 0, &a, &b, &c, &d);
    max_basic = a;
    amd = b == 0x68747541; /* "Auth" of AuthenticAMD */
    cpuid(0x80000000, 0, &a, &b, &c, &d);
    max_ext = a;
    struct mp_info mp; mp_find(&mp);
    if (!mp.ok) fail(mp.error);
    cpuid(1, 0, &a, &b, &c, &d);
    uint32_t me = b >> 24;
    report();
    smp_start_all(&mp, me, &cpus_up);
    while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE)) pause();
    printf_lite("CPUS %u VENDOR %s\n", cpus_up, amd ? "amd" : "other");
    __atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
    return cpus_up == (uint32_t)mp.ncpus ? 0 : 1;
}
