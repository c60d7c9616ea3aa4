/* boot_check: reads the device tree back and prints what it says, one fact per line, for the host to compare with
 * the VM's configuration: FDT <addr>, MEM <base> <size>, CPU <reg> (each), BOOTARGS <...>, GIC <compatible>,
 * PSCI <method>, VIRTIO <base> <spi> (each), RTC <base>, EL <n>, then "BOOT OK". */
#include "guest.h"
static void cpu(const void *fdt, const char *name, void *arg) {
    (void)fdt; (void)arg;
    printf_lite("CPU %s\n", name + 4);
}
static void device(const void *fdt, const char *name, void *arg) {
    (void)arg;
    uint32_t len;
    const uint8_t *reg = fdt_child_prop(fdt, name, "reg", &len);
    const uint8_t *irq = fdt_child_prop(fdt, name, "interrupts", 0);
    if (!strncmp(name, "virtio_mmio@", 12) && reg && irq && len == 16)
        printf_lite("VIRTIO %lx %u\n", be64(reg), be32(irq + 4));
    if (!strncmp(name, "rtc@", 4) && reg)
        printf_lite("RTC %lx %x\n", be64(reg), mmio_read32(be64(reg) + 0xFE0));
}
int guest_main(const void *fdt) {
    if (fdt_check(fdt)) fail("no device tree at x0");
    printf_lite("FDT %lx\n", (uint64_t)fdt);
    uint32_t len;
    const uint8_t *mem = fdt_prop(fdt, "/memory@80000000", "reg", &len);
    if (!mem || len != 16) fail("no /memory@80000000 reg");
    printf_lite("MEM %lx %lx\n", be64(mem), be64(mem + 8));
    fdt_children(fdt, "/cpus", "cpu@", cpu, 0);
    const char *args = fdt_prop(fdt, "/chosen", "bootargs", 0);
    printf_lite("BOOTARGS %s\n", args ? args : "");
    fdt_children(fdt, "/", "intc@", 0, 0);
    const char *psci = fdt_prop(fdt, "/psci", "method", 0);
    printf_lite("PSCI %s %lx\n", psci ? psci : "none", (uint64_t)psci_call(PSCI_VERSION, 0, 0, 0));
    fdt_children(fdt, "/", "", device, 0);
    uint64_t el;
    __asm__ volatile("mrs %0, CurrentEL" : "=r"(el));
    printf_lite("EL %lu\n", el >> 2);
    printf_lite("BOOT OK\n");
    return 0;
}
