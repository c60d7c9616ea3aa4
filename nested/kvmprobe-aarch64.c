/*
 * kvmprobe-aarch64: checks an arm64 /dev/kvm from inside the aarch64 L1 (see nested/README.md, "aarch64").
 * Cross-built with `aarch64-linux-gnu-gcc -static` into nested/target/kvmprobe-aarch64.
 *
 *   kvmprobe-aarch64 api        prints "KVM_API_VERSION <n>"
 *   kvmprobe-aarch64 caps       prints "CAP <name> <value>" for the capabilities a VMM on arm64 cares about
 *   kvmprobe-aarch64 mmio [N]   a guest at 0x80000000 (64 KiB of RAM) stores x0=42 to 0x10000000 N times (default
 *                               1), then calls PSCI SYSTEM_OFF; checks N KVM_EXIT_MMIO writes of 42 and the shutdown;
 *                               prints exit counts and microseconds per exit
 *   kvmprobe-aarch64 psci       the guest does `hvc #0` with x0=0x84000008 (PSCI SYSTEM_OFF) at once; checks
 *                               KVM_EXIT_SYSTEM_EVENT with type KVM_SYSTEM_EVENT_SHUTDOWN
 *   kvmprobe-aarch64 gic        creates an in-kernel GICv3 (KVM_DEV_TYPE_ARM_VGIC_V3, distributor 0x08000000,
 *                               redistributors 0x080a0000) and an ITS (0x08080000), initialises them after the vCPU
 *                               and runs the MMIO guest once with them in place
 *   kvmprobe-aarch64 all        api, caps, mmio 1, psci, gic, then mmio 1000 for the timing (default)
 *
 * Every check prints one line starting "ok " or "FAIL "; exit status 0 when all passed, 1 otherwise (errors of a
 * system call name it and errno on stderr), 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if !defined(__aarch64__)
#error "kvmprobe-aarch64 is for arm64 (build it with aarch64-linux-gnu-gcc -static)"
#endif

#define RAM_BASE 0x80000000ULL
#define RAM_SIZE 0x10000ULL
#define MMIO_ADDR 0x10000000ULL
#define GICD_BASE 0x08000000ULL
#define GITS_BASE 0x08080000ULL
#define GICR_BASE 0x080a0000ULL
#define PSCI_SYSTEM_OFF 0x84000008U

static int kvm = -1;
static int failures;

static void ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ok(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("ok ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
}
static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
    failures++;
}
/* a failed system call: one FAIL line naming it, then the check is abandoned (returns -1) */
#define SYSFAIL(check, what) (fail("%s: %s: %s", (check), (what), strerror(errno)), -1)

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* A64 encodings */
static uint32_t movz(int rd, uint32_t imm16, int hw) { return 0xD2800000u | (uint32_t)hw << 21 | (imm16 & 0xffff) << 5 | rd; }
static uint32_t movk(int rd, uint32_t imm16, int hw) { return 0xF2800000u | (uint32_t)hw << 21 | (imm16 & 0xffff) << 5 | rd; }

/*
 * The guest, at RAM_BASE:
 *   0: movz x0, #42
 *   1: movz x1, #0x1000, lsl #16     x1 = 0x10000000 (MMIO_ADDR)
 *   2: movz x2, #N
 *   3: str  x0, [x1]                 <- KVM_EXIT_MMIO, is_write, len 8, data 42
 *   4: subs x2, x2, #1
 *   5: b.ne 3
 *   6: movz x0, #0x0008
 *   7: movk x0, #0x8400, lsl #16     x0 = 0x84000008, PSCI SYSTEM_OFF   <- PC for "psci"
 *   8: hvc  #0                       <- KVM_EXIT_SYSTEM_EVENT (SHUTDOWN)
 *   9: b    .
 */
#define PSCI_ENTRY_INDEX 6
static void write_guest(uint8_t *mem, unsigned n) {
    uint32_t code[] = {
        movz(0, 42, 0),
        movz(1, (uint32_t)(MMIO_ADDR >> 16), 1),
        movz(2, n, 0),
        0xF9000020u,              /* str x0, [x1] */
        0xF1000442u,              /* subs x2, x2, #1 */
        0x54FFFFC1u,              /* b.ne -2 (to the str) */
        movz(0, PSCI_SYSTEM_OFF & 0xffff, 0),
        movk(0, PSCI_SYSTEM_OFF >> 16, 1),
        0xD4000002u,              /* hvc #0 */
        0x14000000u,              /* b . */
    };
    memcpy(mem, code, sizeof code);
}

static const char *target_name(uint32_t t) {
    switch (t) {
    case KVM_ARM_TARGET_AEM_V8: return "AEM_V8";
    case KVM_ARM_TARGET_FOUNDATION_V8: return "FOUNDATION_V8";
    case KVM_ARM_TARGET_CORTEX_A57: return "CORTEX_A57";
    case KVM_ARM_TARGET_XGENE_POTENZA: return "XGENE_POTENZA";
    case KVM_ARM_TARGET_CORTEX_A53: return "CORTEX_A53";
    case KVM_ARM_TARGET_GENERIC_V8: return "GENERIC_V8";
    default: return "unknown";
    }
}

static const char *exit_name(uint32_t r) {
    switch (r) {
    case KVM_EXIT_UNKNOWN: return "UNKNOWN";
    case KVM_EXIT_EXCEPTION: return "EXCEPTION";
    case KVM_EXIT_HYPERCALL: return "HYPERCALL";
    case KVM_EXIT_MMIO: return "MMIO";
    case KVM_EXIT_INTR: return "INTR";
    case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
    case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
    case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
    case KVM_EXIT_SYSTEM_EVENT: return "SYSTEM_EVENT";
    case KVM_EXIT_ARM_NISV: return "ARM_NISV";
    default: return "?";
    }
}

struct vm {
    int fd, vcpu, gic, its;
    uint8_t *mem;
    struct kvm_run *run;
    struct kvm_vcpu_init init;
    size_t run_size;
};

static int set_reg(int vcpu, uint64_t id, uint64_t value) {
    struct kvm_one_reg r = {.id = id, .addr = (uint64_t)(uintptr_t)&value};
    return ioctl(vcpu, KVM_SET_ONE_REG, &r);
}
static int get_reg(int vcpu, uint64_t id, uint64_t *value) {
    struct kvm_one_reg r = {.id = id, .addr = (uint64_t)(uintptr_t)value};
    return ioctl(vcpu, KVM_GET_ONE_REG, &r);
}
#define CORE_REG(field) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(field))

static int set_dev_attr(int dev, uint32_t group, uint64_t attr, const void *addr) {
    struct kvm_device_attr a = {.group = group, .attr = attr, .addr = (uint64_t)(uintptr_t)addr};
    return ioctl(dev, KVM_SET_DEVICE_ATTR, &a);
}

/* a VM with 64 KiB of RAM at RAM_BASE holding the guest, one vCPU (PSCI 0.2) at PC = RAM_BASE + 4 * entry, EL1h with
 * DAIF masked; with_gic adds an in-kernel GICv3 + ITS, initialised after the vCPU */
static int vm_create(struct vm *v, const char *check, unsigned n, int entry, int with_gic) {
    memset(v, 0, sizeof *v);
    v->fd = v->vcpu = v->gic = v->its = -1;
    /* machine type 0: the default 40-bit IPA space, enough for everything here */
    v->fd = ioctl(kvm, KVM_CREATE_VM, 0);
    if (v->fd < 0) return SYSFAIL(check, "KVM_CREATE_VM");
    v->mem = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (v->mem == MAP_FAILED) return SYSFAIL(check, "mmap guest RAM");
    write_guest(v->mem, n);
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = RAM_BASE, .memory_size = RAM_SIZE, .userspace_addr = (uint64_t)(uintptr_t)v->mem};
    if (ioctl(v->fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) return SYSFAIL(check, "KVM_SET_USER_MEMORY_REGION");

    if (with_gic) {
        struct kvm_create_device cd = {.type = KVM_DEV_TYPE_ARM_VGIC_V3};
        if (ioctl(v->fd, KVM_CREATE_DEVICE, &cd) < 0) return SYSFAIL(check, "KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V3)");
        v->gic = cd.fd;
        uint64_t dist = GICD_BASE, redist = GICR_BASE;
        if (set_dev_attr(v->gic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist) < 0)
            return SYSFAIL(check, "KVM_DEV_ARM_VGIC_GRP_ADDR KVM_VGIC_V3_ADDR_TYPE_DIST");
        if (set_dev_attr(v->gic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist) < 0)
            return SYSFAIL(check, "KVM_DEV_ARM_VGIC_GRP_ADDR KVM_VGIC_V3_ADDR_TYPE_REDIST");
    }

    v->vcpu = ioctl(v->fd, KVM_CREATE_VCPU, 0);
    if (v->vcpu < 0) return SYSFAIL(check, "KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < 0) return SYSFAIL(check, "KVM_GET_VCPU_MMAP_SIZE");
    v->run_size = (size_t)run_size;
    v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
    if (v->run == MAP_FAILED) return SYSFAIL(check, "mmap kvm_run");

    if (ioctl(v->fd, KVM_ARM_PREFERRED_TARGET, &v->init) < 0) return SYSFAIL(check, "KVM_ARM_PREFERRED_TARGET");
    v->init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
    if (ioctl(v->vcpu, KVM_ARM_VCPU_INIT, &v->init) < 0) return SYSFAIL(check, "KVM_ARM_VCPU_INIT");

    if (set_reg(v->vcpu, CORE_REG(regs.pc), RAM_BASE + 4u * (unsigned)entry) < 0) return SYSFAIL(check, "KVM_SET_ONE_REG pc");
    if (set_reg(v->vcpu, CORE_REG(regs.pstate), 0x3c5) < 0) return SYSFAIL(check, "KVM_SET_ONE_REG pstate");
    uint64_t pc = 0;
    if (get_reg(v->vcpu, CORE_REG(regs.pc), &pc) < 0) return SYSFAIL(check, "KVM_GET_ONE_REG pc");
    if (pc != RAM_BASE + 4u * (unsigned)entry) {
        fail("%s: pc reads back 0x%llx", check, (unsigned long long)pc);
        return -1;
    }

    if (with_gic) {
        if (set_dev_attr(v->gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL) < 0)
            return SYSFAIL(check, "KVM_DEV_ARM_VGIC_CTRL_INIT (GICv3)");
        struct kvm_create_device cd = {.type = KVM_DEV_TYPE_ARM_VGIC_ITS};
        if (ioctl(v->fd, KVM_CREATE_DEVICE, &cd) < 0) {
            fail("%s: KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_ITS): %s", check, strerror(errno));
        } else {
            v->its = cd.fd;
            uint64_t its = GITS_BASE;
            if (set_dev_attr(v->its, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, &its) < 0)
                fail("%s: ITS KVM_VGIC_ITS_ADDR_TYPE: %s", check, strerror(errno));
            else if (set_dev_attr(v->its, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL) < 0)
                fail("%s: ITS KVM_DEV_ARM_VGIC_CTRL_INIT: %s", check, strerror(errno));
            else /* a VM capability: with an ITS, KVM_SIGNAL_MSI and MSI routes must carry a device ID */
                printf("VM_CAP KVM_CAP_MSI_DEVID %d\n", ioctl(v->fd, KVM_CHECK_EXTENSION, KVM_CAP_MSI_DEVID));
        }
    }
    return 0;
}

static void vm_destroy(struct vm *v) {
    if (v->its >= 0) close(v->its);
    if (v->gic >= 0) close(v->gic);
    if (v->vcpu >= 0) close(v->vcpu);
    if (v->fd >= 0) close(v->fd);
    if (v->run && v->run != MAP_FAILED) munmap(v->run, v->run_size);
    if (v->mem && v->mem != MAP_FAILED) munmap(v->mem, RAM_SIZE);
}

static int vcpu_run(struct vm *v, const char *check) {
    for (;;) {
        if (ioctl(v->vcpu, KVM_RUN, 0) == 0) return 0;
        if (errno != EINTR) return SYSFAIL(check, "KVM_RUN");
    }
}

/* N MMIO writes of 42 to MMIO_ADDR, then the PSCI shutdown */
static void check_mmio(unsigned n, int with_gic) {
    char check[64];
    snprintf(check, sizeof check, "mmio %u%s", n, with_gic ? " with GICv3" : "");
    struct vm v;
    if (vm_create(&v, check, n, 0, with_gic) < 0) { vm_destroy(&v); return; }
    unsigned mmio = 0, bad = 0, other = 0;
    int shutdown = 0;
    double t0 = now_us();
    while (mmio + bad + other < n + 100) {
        if (vcpu_run(&v, check) < 0) { vm_destroy(&v); return; }
        struct kvm_run *r = v.run;
        if (r->exit_reason == KVM_EXIT_MMIO) {
            uint64_t data = 0;
            memcpy(&data, r->mmio.data, r->mmio.len <= 8 ? r->mmio.len : 8);
            if (r->mmio.phys_addr == MMIO_ADDR && r->mmio.is_write && r->mmio.len == 8 && data == 42) {
                mmio++;
            } else {
                if (!bad)
                    fprintf(stderr, "kvmprobe-aarch64: %s: unexpected MMIO exit addr 0x%llx write %u len %u data 0x%llx\n",
                            check, (unsigned long long)r->mmio.phys_addr, r->mmio.is_write, r->mmio.len,
                            (unsigned long long)data);
                bad++;
            }
        } else if (r->exit_reason == KVM_EXIT_SYSTEM_EVENT && r->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
            shutdown = 1;
            break;
        } else {
            uint64_t pc = 0;
            get_reg(v.vcpu, CORE_REG(regs.pc), &pc);
            fprintf(stderr, "kvmprobe-aarch64: %s: unexpected exit %u (%s) at pc 0x%llx\n", check, r->exit_reason,
                    exit_name(r->exit_reason), (unsigned long long)pc);
            other++;
            if (r->exit_reason == KVM_EXIT_FAIL_ENTRY || r->exit_reason == KVM_EXIT_INTERNAL_ERROR) break;
        }
    }
    double t1 = now_us();
    if (mmio == n && bad == 0 && other == 0 && shutdown)
        ok("%s: %u KVM_EXIT_MMIO writes of 42 at 0x%llx (len 8), then PSCI SYSTEM_OFF", check, mmio,
           (unsigned long long)MMIO_ADDR);
    else
        fail("%s: %u good MMIO exits, %u bad, %u other, shutdown %d", check, mmio, bad, other, shutdown);
    if (n > 1) {
        printf("MMIO_EXITS %u OTHER_EXITS %u SHUTDOWN %d\n", mmio, bad + other, shutdown);
        printf("MMIO_TOTAL_US %.0f MMIO_US_PER_EXIT %.1f\n", t1 - t0, (t1 - t0) / (mmio ? mmio : 1));
    }
    vm_destroy(&v);
}

static void check_psci(void) {
    const char *check = "psci";
    struct vm v;
    if (vm_create(&v, check, 1, PSCI_ENTRY_INDEX, 0) < 0) { vm_destroy(&v); return; }
    printf("PREFERRED_TARGET %u %s\n", v.init.target, target_name(v.init.target));
    if (vcpu_run(&v, check) == 0) {
        struct kvm_run *r = v.run;
        if (r->exit_reason == KVM_EXIT_SYSTEM_EVENT && r->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
            ok("psci: hvc #0 with x0=0x84000008 gives KVM_EXIT_SYSTEM_EVENT type KVM_SYSTEM_EVENT_SHUTDOWN "
               "(vcpu target %u %s, KVM_ARM_VCPU_PSCI_0_2)", v.init.target, target_name(v.init.target));
        else
            fail("psci: exit %u (%s)%s%u", r->exit_reason, exit_name(r->exit_reason),
                 r->exit_reason == KVM_EXIT_SYSTEM_EVENT ? " type " : " ",
                 r->exit_reason == KVM_EXIT_SYSTEM_EVENT ? r->system_event.type : 0);
    }
    vm_destroy(&v);
}

static void check_gic(void) {
    int f0 = failures;
    check_mmio(1, 1);
    if (failures == f0)
        ok("gic: in-kernel GICv3 (KVM_DEV_TYPE_ARM_VGIC_V3, dist 0x%llx, redist 0x%llx) and ITS (0x%llx) created and "
           "initialised (KVM_DEV_ARM_VGIC_CTRL_INIT)", (unsigned long long)GICD_BASE, (unsigned long long)GICR_BASE,
           (unsigned long long)GITS_BASE);
}

struct cap { const char *name; long id; };
#define CAP(x) {#x, x}
static const struct cap caps[] = {
    CAP(KVM_CAP_USER_MEMORY),        CAP(KVM_CAP_ONE_REG),          CAP(KVM_CAP_ARM_PSCI),
    CAP(KVM_CAP_ARM_PSCI_0_2),       CAP(KVM_CAP_IOEVENTFD),        CAP(KVM_CAP_IRQFD),
    CAP(KVM_CAP_ARM_VM_IPA_SIZE),    CAP(KVM_CAP_NR_VCPUS),         CAP(KVM_CAP_MAX_VCPUS),
    CAP(KVM_CAP_DEVICE_CTRL),        CAP(KVM_CAP_IRQCHIP),          CAP(KVM_CAP_IRQ_ROUTING),
    CAP(KVM_CAP_SIGNAL_MSI),         CAP(KVM_CAP_MSI_DEVID),        CAP(KVM_CAP_ARM_EL1_32BIT),
    CAP(KVM_CAP_ARM_PMU_V3),         CAP(KVM_CAP_ARM_SVE),          CAP(KVM_CAP_ARM_PTRAUTH_ADDRESS),
    CAP(KVM_CAP_ARM_PTRAUTH_GENERIC), CAP(KVM_CAP_ARM_USER_IRQ),    CAP(KVM_CAP_IMMEDIATE_EXIT),
    CAP(KVM_CAP_READONLY_MEM),       CAP(KVM_CAP_COALESCED_MMIO),   CAP(KVM_CAP_ARM_NISV_TO_USER),
    CAP(KVM_CAP_ARM_INJECT_SERROR_ESR), CAP(KVM_CAP_VCPU_ATTRIBUTES), CAP(KVM_CAP_ARM_SYSTEM_SUSPEND),
    CAP(KVM_CAP_SET_GUEST_DEBUG),    CAP(KVM_CAP_GUEST_DEBUG_HW_BPS), CAP(KVM_CAP_ARM_MTE),
};

static void check_caps(void) {
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        printf("CAP %s %d\n", caps[i].name, ioctl(kvm, KVM_CHECK_EXTENSION, caps[i].id));
    /* what a VMM cannot do without */
    static const long need[] = {KVM_CAP_USER_MEMORY, KVM_CAP_ONE_REG, KVM_CAP_ARM_PSCI_0_2, KVM_CAP_IOEVENTFD,
                                KVM_CAP_IRQFD, KVM_CAP_DEVICE_CTRL};
    int missing = 0;
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (ioctl(kvm, KVM_CHECK_EXTENSION, need[i]) <= 0) missing++;
    int ipa = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
    if (missing == 0)
        ok("caps: USER_MEMORY ONE_REG ARM_PSCI_0_2 IOEVENTFD IRQFD DEVICE_CTRL present, IPA limit %d bits", ipa);
    else
        fail("caps: %d of USER_MEMORY ONE_REG ARM_PSCI_0_2 IOEVENTFD IRQFD DEVICE_CTRL missing", missing);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "all";
    int all = strcmp(mode, "all") == 0;
    long n = 1;
    if (strcmp(mode, "mmio") == 0 && argc > 2) n = strtol(argv[2], NULL, 0);
    if ((!all && strcmp(mode, "api") && strcmp(mode, "caps") && strcmp(mode, "mmio") && strcmp(mode, "psci") &&
         strcmp(mode, "gic")) || n < 1 || n > 65535) {
        fprintf(stderr, "usage: kvmprobe-aarch64 [all | api | caps | mmio [N (1..65535)] | psci | gic]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        fail("open /dev/kvm: %s", strerror(errno));
        return 1;
    }
    int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
    printf("KVM_API_VERSION %d\n", api);
    if (api != KVM_API_VERSION) {
        fail("api: KVM_GET_API_VERSION %d, want %d", api, KVM_API_VERSION);
        return 1;
    }
    if (all) ok("api: KVM_GET_API_VERSION %d", api);
    if (all || !strcmp(mode, "caps")) check_caps();
    if (all || !strcmp(mode, "mmio")) check_mmio((unsigned)n, 0);
    if (all || !strcmp(mode, "psci")) check_psci();
    if (all || !strcmp(mode, "gic")) check_gic();
    if (all) check_mmio(1000, 0);
    return failures ? 1 : 0;
}
