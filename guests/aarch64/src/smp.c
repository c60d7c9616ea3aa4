/* smp: starts every other CPU of the device tree with PSCI CPU_ON (entry secondary_entry, context id = its index);
 * each writes its MPIDR into a slot; prints "SMP <n> up" once all are running, or fails after a while. */
#include "guest.h"
#define MAX 16
static volatile uint64_t seen[MAX];
static uint64_t regs[MAX];
static int ncpus;
static void cpu(const void *fdt, const char *name, void *arg) {
    (void)arg;
    char path[40] = "/cpus/";
    size_t n = strlen(name);
    if (n > sizeof path - 7 || ncpus >= MAX) return;
    memcpy(path + 6, name, n + 1);
    const uint8_t *reg = fdt_prop(fdt, path, "reg", 0);
    if (reg) regs[ncpus++] = be32(reg);
}
void ap_main(uint64_t index) {
    uint64_t mpidr;
    __asm__ volatile("mrs %0, mpidr_el1" : "=r"(mpidr));
    if (index < MAX) seen[index] = (mpidr & 0xFFFFFF) | 0x100000000UL;
    for (;;) __asm__ volatile("wfi");
}
int guest_main(const void *fdt) {
    if (fdt_check(fdt)) fail("no device tree at x0");
    fdt_children(fdt, "/cpus", "cpu@", cpu, 0);
    printf_lite("CPUS %d\n", ncpus);
    for (int i = 1; i < ncpus; i++) {
        int64_t r = psci_call(PSCI_CPU_ON, regs[i], (uint64_t)secondary_entry, (uint64_t)i);
        if (r != 0) { printf_lite("CPU_ON %d: %ld\n", i, r); fail("CPU_ON refused"); }
    }
    for (uint64_t spin = 0; spin < 2000000000UL; spin++) {
        int up = 1;
        for (int i = 1; i < ncpus; i++) up += (seen[i] >> 32) != 0;
        if (up == ncpus) {
            for (int i = 1; i < ncpus; i++)
                if ((seen[i] & 0xFFFFFF) != regs[i]) { printf_lite("CPU %d mpidr %lx\n", i, seen[i]); fail("MPIDR differs"); }
            printf_lite("SMP %d up\n", up);
            return 0;
        }
    }
    fail("not every CPU came up");
}
