/*
 * cvmm — a minimal KVM virtual machine monitor in C.
 *
 * It boots a static ELF test guest exactly the way libkrun boots its kernel on x86_64
 * (libkrun: src/vmm/src/builder.rs and src/arch/src/x86_64) and is used (1) to validate the jkrun test
 * guests independently of the Java VMM and (2) as a benchmark baseline.
 *
 *   cvmm [--cpus N] [--mem MiB] [--cmdline STR] [--repeat K] [--console] guest.elf
 *   cvmm [--cpus N] [--mem MiB] [--cmdline STR] [--repeat K] [--console] --krunfw libkrunfw.so
 *
 * --krunfw boots libkrunfw's kernel instead of an ELF: the library is dlopen()ed, the flat image
 * from krunfw_get_kernel() is copied to its load address and entered at its entry address, with
 * the same zero page / e820 / cmdline / tables as for the test guests. RAM is
 * 16 MiB + (image size rounded up to 64 KiB) + --mem, like jkrun boot. The default cmdline is
 * jkrun boot's (KRUNFW_CMDLINE). Port 0x64 reads 0x10 (i8042 status: input buffer empty) and a
 * write of 0xFE there is the kernel's reboot=k reset: the VM stops with exit status 0.
 *
 * --console adds a minimal virtio-console (vconsole.c) at 0xD0000000 IRQ 5 (stdin -> rx,
 * tx -> stdout) and appends "virtio_mmio.device=4K@0xd0000000:5" to the cmdline.
 * Devices: port 0x3F8 (bytes written go to stdout), port 0xF4 (outl = exit status).
 * Every other port is ignored (IN reads 0xFF), MMIO is ignored (reads 0xFF).
 * HLT / SHUTDOWN / INTERNAL_ERROR / FAIL_ENTRY / other exits: message on stderr and
 * exit status 200 + exit reason.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- guest memory map (notes §1.3) ---- */
#define GDT_ADDR      0x500
#define IDT_ADDR      0x520
#define ZERO_PAGE     0x7000
#define BOOT_STACK    0x8FF0
#define PML4_ADDR     0x9000
#define PDPT_ADDR     0xA000
#define PD_ADDR       0xB000
#define CMDLINE_ADDR  0x20000
#define CMDLINE_MAX   0x10000
#define MPTABLE_ADDR  0x9FC00
#define HIMEM_START   0x100000ULL
#define MMIO_START    0xD0000000ULL
#define FOUR_GIB      0x100000000ULL
#define TSS_ADDR      0xFFFBD000

#define PORT_DEBUG    0x3F8
#define PORT_EXIT     0xF4
#define PORT_I8042    0x64

#define KRUNFW_CMDLINE "reboot=k panic=-1 panic_print=0x20 nomodule console=hvc0 " \
    "rootfstype=virtiofs rw no-kvmapf virtio_mmio.device=4K@0xd0000000:5"

static void die(const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    fprintf(stderr, "cvmm: "); vfprintf(stderr, fmt, ap);
    if (errno) fprintf(stderr, ": %s", strerror(errno));
    fputc('\n', stderr); va_end(ap); exit(199);
}
#define IOCTL(fd, req, arg) ({ long _r = ioctl((fd), (req), (arg)); \
    if (_r < 0) { die("%s", #req); } _r; })

/* ---- options ---- */
static int opt_cpus = 1;
static uint64_t opt_mem = 128ULL << 20;
static const char *opt_cmdline;
static const char *opt_krunfw;
static const uint8_t *kfw_image;          /* libkrunfw's kernel, mapped by the library */
static uint64_t kfw_load, kfw_entry;
static size_t kfw_size;
static int opt_repeat = 1;
static int opt_console;
static char cmdline_buf[CMDLINE_MAX];
static const char *opt_elf;

/* ---- VM state for one cycle ---- */
struct vcpu { int fd; struct kvm_run *run; pthread_t thread; int id; };
static int kvm_fd, vm_fd, run_size;
static uint8_t *ram;            /* host mapping of [0, low_end) and [4 GiB, ...) contiguous */
static uint64_t low_end, high_size;  /* RAM below the gap; RAM above 4 GiB */
static struct vcpu vcpus[64];
static uint64_t entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int done, exit_code;
static char outbuf[4096]; static size_t outlen;

static void finish(int code) {          /* first finisher wins */
    pthread_mutex_lock(&lock);
    if (!done) { done = 1; exit_code = code; pthread_cond_signal(&done_cv); }
    pthread_mutex_unlock(&lock);
}

/* guest physical → host pointer (no bounds checks beyond the two RAM ranges) */
void *gpa(uint64_t a);
void vcon_attach(int vm_fd);
void vcon_detach(void);
int vcon_mmio(uint64_t addr, uint8_t *data, uint32_t len, int is_write);

void *gpa(uint64_t a) {
    if (a < low_end) return ram + a;
    if (a >= FOUR_GIB && a - FOUR_GIB < high_size) return ram + low_end + (a - FOUR_GIB);
    fprintf(stderr, "cvmm: guest address 0x%llx is not RAM\n", (unsigned long long)a); exit(199);
}

/* ---- ELF loading: PT_LOAD segments by p_paddr ---- */
static void load_elf(const char *path) {
    int fd = open(path, O_RDONLY); if (fd < 0) die("open %s", path);
    struct stat st; fstat(fd, &st);
    uint8_t *f = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f == MAP_FAILED) die("mmap %s", path);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)f;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_machine != EM_X86_64) { errno = 0; die("%s: not an x86_64 ELF64", path); }
    for (int i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr *ph = (Elf64_Phdr *)(f + eh->e_phoff + i * eh->e_phentsize);
        if (ph->p_type != PT_LOAD) continue;
        uint8_t *dst = gpa(ph->p_paddr); gpa(ph->p_paddr + ph->p_memsz - 1);
        memcpy(dst, f + ph->p_offset, ph->p_filesz);
        memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
    }
    entry = eh->e_entry;
    munmap(f, st.st_size); close(fd);
}

/* ---- libkrunfw: the kernel image comes from the library (notes §1.2) ---- */
static void open_krunfw(const char *path) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) { errno = 0; die("dlopen %s: %s", path, dlerror()); }
    void *(*get_kernel)(uint64_t *, uint64_t *, size_t *) =
        (void *(*)(uint64_t *, uint64_t *, size_t *))dlsym(h, "krunfw_get_kernel");
    if (!get_kernel) { errno = 0; die("%s: no krunfw_get_kernel", path); }
    kfw_image = get_kernel(&kfw_load, &kfw_entry, &kfw_size);
    if (!kfw_image || !kfw_size) { errno = 0; die("%s: krunfw_get_kernel returned no image", path); }
}

static void load_krunfw(void) {
    memcpy(gpa(kfw_load), kfw_image, kfw_size);
    gpa(kfw_load + kfw_size - 1);
    entry = kfw_entry;
}

/* ---- zero page, e820, cmdline (§1.5–§1.7) ---- */
static void put8(uint64_t a, uint8_t v) { *(uint8_t *)gpa(a) = v; }
static void put16(uint64_t a, uint16_t v) { memcpy(gpa(a), &v, 2); }
static void put32(uint64_t a, uint32_t v) { memcpy(gpa(a), &v, 4); }
static void put64(uint64_t a, uint64_t v) { memcpy(gpa(a), &v, 8); }

static void setup_zero_page(void) {
    size_t n = strlen(opt_cmdline);
    if (n + 1 > CMDLINE_MAX) { errno = 0; die("cmdline too long"); }
    memcpy(gpa(CMDLINE_ADDR), opt_cmdline, n + 1);
    uint64_t zp = ZERO_PAGE;
    memset(gpa(zp), 0, 4096);
    put16(zp + 0x1FE, 0xAA55);            /* boot_flag */
    put32(zp + 0x202, 0x53726448);        /* "HdrS" */
    put8(zp + 0x210, 0xFF);               /* type_of_loader */
    put32(zp + 0x228, CMDLINE_ADDR);      /* cmd_line_ptr */
    put32(zp + 0x230, 0x1000000);         /* kernel_alignment */
    put32(zp + 0x238, n + 1);             /* cmdline_size */
    struct { uint64_t addr, size; uint32_t type; } __attribute__((packed)) e[4];
    int k = 0;
    e[k++] = (typeof(e[0])){0, 0x9FC00, 1};
    e[k++] = (typeof(e[0])){HIMEM_START, low_end - HIMEM_START, 1};
    if (high_size) e[k++] = (typeof(e[0])){FOUR_GIB, high_size, 1};
    memcpy(gpa(zp + 0x2D0), e, sizeof(e[0]) * k);
    put8(zp + 0x1E8, k);                  /* e820_entries */
}

/* ---- GDT, IDT, identity page tables (§1.8) ---- */
static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
    return ((uint64_t)(base & 0xFF000000) << 32) | ((uint64_t)(flags & 0xF0FF) << 40) |
           ((uint64_t)(limit & 0xF0000) << 32) | ((uint64_t)(base & 0xFFFFFF) << 16) |
           (limit & 0xFFFF);
}
static struct kvm_segment seg_of(uint64_t e, uint16_t sel) {
    struct kvm_segment s = {
        .base = ((e >> 16) & 0xFFFFFF) | (((e >> 56) & 0xFF) << 24),
        .limit = (uint32_t)((e & 0xFFFF) | (((e >> 48) & 0xF) << 16)),
        .selector = sel, .type = (e >> 40) & 0xF, .present = (e >> 47) & 1,
        .dpl = (e >> 45) & 3, .db = (e >> 54) & 1, .s = (e >> 44) & 1,
        .l = (e >> 53) & 1, .g = (e >> 55) & 1, .avl = (e >> 52) & 1,
    };
    if (s.g) s.limit = (s.limit << 12) | 0xFFF;
    s.unusable = !s.present;
    return s;
}

static void setup_tables(void) {
    uint64_t gdt[4] = { 0, gdt_entry(0xA09B, 0, 0xFFFFF), gdt_entry(0xC093, 0, 0xFFFFF),
                        gdt_entry(0x808B, 0, 0xFFFFF) };
    memcpy(gpa(GDT_ADDR), gdt, sizeof gdt);
    put64(IDT_ADDR, 0);
    memset(gpa(PML4_ADDR), 0, 0x3000);
    put64(PML4_ADDR, PDPT_ADDR | 3);
    put64(PDPT_ADDR, PD_ADDR | 3);
    for (uint64_t i = 0; i < 512; i++) put64(PD_ADDR + 8 * i, (i << 21) | 0x83);
}

/* ---- MP table at 0x9FC00 (§1.10) ---- */
static uint8_t csum(const uint8_t *p, size_t n) { uint8_t s = 0; while (n--) s += *p++; return -s; }

static void setup_mptable(int n) {
    uint8_t *b = gpa(MPTABLE_ADDR), *p = b;
    memset(b, 0, 1024);
    /* floating pointer */
    memcpy(p, "_MP_", 4); put32(MPTABLE_ADDR + 4, MPTABLE_ADDR + 16);
    p[8] = 1; p[9] = 4; p[10] = csum(p, 16);
    uint8_t *h = b + 16; p = h + 44;
    for (int i = 0; i < n; i++, p += 20) {      /* processors */
        p[0] = 0; p[1] = i; p[2] = 0x14; p[3] = 1 | (i == 0 ? 2 : 0);
        uint32_t sig = 0x600, feat = 0x201; memcpy(p + 4, &sig, 4); memcpy(p + 8, &feat, 4);
    }
    p[0] = 1; p[1] = 0; memcpy(p + 2, "ISA   ", 6); p += 8;             /* bus */
    p[0] = 2; p[1] = n + 1; p[2] = 0x14; p[3] = 1;                       /* ioapic */
    uint32_t ioa = 0xFEC00000; memcpy(p + 4, &ioa, 4); p += 8;
    for (int i = 0; i < 16; i++, p += 8) {      /* interrupt sources: IRQ i -> pin i */
        p[0] = 3; p[1] = 0; p[4] = 0; p[5] = i; p[6] = n + 1; p[7] = i;
    }
    p[0] = 4; p[1] = 3; p[4] = 0; p[5] = 0; p[6] = 0; p[7] = 0; p += 8;       /* ExtINT -> LINT0 */
    p[0] = 4; p[1] = 1; p[4] = 0; p[5] = 0; p[6] = 0xFF; p[7] = 1; p += 8;    /* NMI -> LINT1 */
    uint16_t len = p - h;
    memcpy(h, "PCMP", 4); memcpy(h + 4, &len, 2); h[6] = 4;
    memcpy(h + 8, "FC      ", 8); memcpy(h + 16, "000000000000", 12);
    uint32_t lapic = 0xFEE00000; memcpy(h + 36, &lapic, 4);
    uint16_t cnt = n + 1 + 1 + 16 + 2; memcpy(h + 34, &cnt, 2);
    h[7] = csum(h, len);
}

/* ---- per-vCPU setup (§1.8, §1.9) ---- */
static struct kvm_cpuid2 *supported;

static void setup_vcpu(struct vcpu *v, int n) {
    int id = v->id;
    /* CPUID */
    size_t sz = sizeof(struct kvm_cpuid2) + supported->nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = malloc(sz); memcpy(c, supported, sz);
    int pow2 = 1; while (pow2 < n) pow2 <<= 1;
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 1) {
            e->ebx = (id << 24) | (pow2 << 16) | (8 << 8) | (e->ebx & 0xFF);
            e->ecx |= 1u << 31;
            e->edx = n > 1 ? e->edx | (1u << 28) : e->edx & ~(1u << 28);
        } else if (e->function == 0xB) {
            e->edx = id;
        }
    }
    IOCTL(v->fd, KVM_SET_CPUID2, c); free(c);
    /* MSRs */
    static const uint32_t idx[] = { 0x174, 0x175, 0x176, 0xC0000081, 0xC0000083, 0xC0000082,
                                    0xC0000084, 0xC0000102, 0x10, 0x1A0, 0x2FF };
    static const uint64_t val[] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x806 };
    int nm = sizeof idx / sizeof idx[0];
    struct { struct kvm_msrs h; struct kvm_msr_entry e[16]; } msrs = { .h.nmsrs = nm };
    for (int i = 0; i < nm; i++) { msrs.e[i].index = idx[i]; msrs.e[i].data = val[i]; }
    if (IOCTL(v->fd, KVM_SET_MSRS, &msrs) != nm) { errno = 0; die("KVM_SET_MSRS: not all written"); }
    /* GPRs */
    struct kvm_regs r = { .rip = entry, .rsp = BOOT_STACK, .rbp = BOOT_STACK, .rsi = ZERO_PAGE,
                          .rflags = 2 };
    IOCTL(v->fd, KVM_SET_REGS, &r);
    /* FPU */
    struct kvm_fpu f = { .fcw = 0x37F, .mxcsr = 0x1F80 };
    IOCTL(v->fd, KVM_SET_FPU, &f);
    /* SREGS */
    struct kvm_sregs s; IOCTL(v->fd, KVM_GET_SREGS, &s);
    uint64_t *gdt = gpa(GDT_ADDR);
    s.cs = seg_of(gdt[1], 0x08);
    s.ds = s.es = s.fs = s.gs = s.ss = seg_of(gdt[2], 0x10);
    s.tr = seg_of(gdt[3], 0x18);
    s.gdt.base = GDT_ADDR; s.gdt.limit = 31;
    s.idt.base = IDT_ADDR; s.idt.limit = 7;
    s.cr3 = PML4_ADDR; s.cr4 |= 0x20; s.cr0 |= 0x80000001; s.efer |= 0x500;
    IOCTL(v->fd, KVM_SET_SREGS, &s);
    /* LAPIC: LINT0 = ExtINT, LINT1 = NMI */
    struct kvm_lapic_state l; IOCTL(v->fd, KVM_GET_LAPIC, &l);
    uint32_t *lvt0 = (uint32_t *)&l.regs[0x350], *lvt1 = (uint32_t *)&l.regs[0x360];
    *lvt0 = (*lvt0 & ~0x700) | (7 << 8);
    *lvt1 = (*lvt1 & ~0x700) | (4 << 8);
    IOCTL(v->fd, KVM_SET_LAPIC, &l);
}

/* ---- the vCPU loop (§1.14) ---- */
static void out_bytes(const uint8_t *p, size_t n) {
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++) {
        outbuf[outlen++] = p[i];
        if (p[i] == '\n' || outlen == sizeof outbuf) { fwrite(outbuf, 1, outlen, stdout); fflush(stdout); outlen = 0; }
    }
    pthread_mutex_unlock(&lock);
}

static const char *exit_name(int r) {
    switch (r) {
    case KVM_EXIT_HLT: return "HLT"; case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
    case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY"; case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
    case KVM_EXIT_SYSTEM_EVENT: return "SYSTEM_EVENT"; default: return "OTHER";
    }
}

static void *vcpu_loop(void *arg) {
    struct vcpu *v = arg;
    struct kvm_run *run = v->run;
    for (;;) {
        if (ioctl(v->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) { run->immediate_exit = 0; if (done) return NULL; continue; }
            fprintf(stderr, "cvmm: KVM_RUN vcpu %d: %s\n", v->id, strerror(errno)); finish(199); return NULL;
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t *data = (uint8_t *)run + run->io.data_offset;
            size_t n = (size_t)run->io.size * run->io.count;
            if (run->io.direction == KVM_EXIT_IO_IN) {
                memset(data, opt_krunfw && run->io.port == PORT_I8042 ? 0x10 : 0xFF, n);
                break;
            }
            if (run->io.port == PORT_DEBUG) out_bytes(data, n);
            else if (opt_krunfw && run->io.port == PORT_I8042 && run->io.size == 1 && data[0] == 0xFE) {
                finish(0); return NULL;        /* reboot=k: "pulse reset line" = the VM stops */
            }
            else if (run->io.port == PORT_EXIT) {
                uint32_t code = 0; memcpy(&code, data, run->io.size < 4 ? run->io.size : 4);
                finish(code); return NULL;
            }
            break;
        }
        case KVM_EXIT_MMIO:
            if (opt_console && vcon_mmio(run->mmio.phys_addr, run->mmio.data, run->mmio.len, run->mmio.is_write)) break;
            if (!run->mmio.is_write) memset(run->mmio.data, 0xFF, run->mmio.len);
            break;
        case KVM_EXIT_INTERNAL_ERROR: case KVM_EXIT_FAIL_ENTRY: case KVM_EXIT_HLT:
        case KVM_EXIT_SHUTDOWN: default: {
            struct kvm_regs r; ioctl(v->fd, KVM_GET_REGS, &r);
            fprintf(stderr, "cvmm: vcpu %d exit %s (%u) rip=0x%llx", v->id,
                    exit_name(run->exit_reason), run->exit_reason, (unsigned long long)r.rip);
            if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
                fprintf(stderr, " suberror=%u", run->internal.suberror);
                for (uint32_t i = 0; i < run->internal.ndata && i < 16; i++)
                    fprintf(stderr, " data[%u]=0x%llx", i, (unsigned long long)run->internal.data[i]);
            }
            if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
                fprintf(stderr, " hw_reason=0x%llx", (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            fputc('\n', stderr);
            finish(200 + run->exit_reason); return NULL;
        }
        }
    }
}

static void on_kick(int sig) { (void)sig; }

/* ---- one create → run → destroy cycle ---- */
static int run_cycle(void) {
    done = 0; exit_code = 0; outlen = 0;
    vm_fd = IOCTL(kvm_fd, KVM_CREATE_VM, 0);
    IOCTL(vm_fd, KVM_SET_TSS_ADDR, TSS_ADDR);
    IOCTL(vm_fd, KVM_CREATE_IRQCHIP, 0);
    struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
    IOCTL(vm_fd, KVM_CREATE_PIT2, &pit);

    /* RAM: [0, mem), or [0, 0xD0000000) + [4 GiB, 4 GiB + rest) */
    low_end = opt_mem <= MMIO_START ? opt_mem : MMIO_START;
    high_size = opt_mem - low_end;
    ram = mmap(NULL, opt_mem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ram == MAP_FAILED) die("mmap guest RAM");
    struct kvm_userspace_memory_region m0 = { .slot = 0, .guest_phys_addr = 0,
        .memory_size = low_end, .userspace_addr = (uintptr_t)ram };
    IOCTL(vm_fd, KVM_SET_USER_MEMORY_REGION, &m0);
    if (high_size) {
        struct kvm_userspace_memory_region m1 = { .slot = 1, .guest_phys_addr = FOUR_GIB,
            .memory_size = high_size, .userspace_addr = (uintptr_t)ram + low_end };
        IOCTL(vm_fd, KVM_SET_USER_MEMORY_REGION, &m1);
    }
    if (opt_console) vcon_attach(vm_fd);
    if (opt_krunfw) load_krunfw(); else load_elf(opt_elf);
    setup_zero_page();
    setup_tables();
    setup_mptable(opt_cpus);

    for (int i = 0; i < opt_cpus; i++) {
        struct vcpu *v = &vcpus[i]; v->id = i;
        v->fd = IOCTL(vm_fd, KVM_CREATE_VCPU, i);
        v->run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
        if (v->run == MAP_FAILED) die("mmap kvm_run");
        setup_vcpu(v, opt_cpus);
    }
    for (int i = 0; i < opt_cpus; i++) pthread_create(&vcpus[i].thread, NULL, vcpu_loop, &vcpus[i]);

    pthread_mutex_lock(&lock);
    while (!done) pthread_cond_wait(&done_cv, &lock);
    if (outlen) { fwrite(outbuf, 1, outlen, stdout); fflush(stdout); outlen = 0; }
    pthread_mutex_unlock(&lock);
    /* stop the other vCPUs: immediate_exit covers a kick that lands outside KVM_RUN */
    for (int i = 0; i < opt_cpus; i++) { vcpus[i].run->immediate_exit = 1; pthread_kill(vcpus[i].thread, SIGUSR1); }
    for (int i = 0; i < opt_cpus; i++) pthread_join(vcpus[i].thread, NULL);
    for (int i = 0; i < opt_cpus; i++) { munmap(vcpus[i].run, run_size); close(vcpus[i].fd); }
    if (opt_console) vcon_detach();
    close(vm_fd);
    munmap(ram, opt_mem);
    return exit_code;
}

static void usage(void) {
    fprintf(stderr, "usage: cvmm [--cpus N] [--mem MiB] [--cmdline STR] [--repeat K] [--console] guest.elf\n"
                    "       cvmm [--cpus N] [--mem MiB] [--cmdline STR] [--repeat K] [--console] --krunfw LIB\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cpus") && i + 1 < argc) opt_cpus = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mem") && i + 1 < argc) opt_mem = strtoull(argv[++i], NULL, 0) << 20;
        else if (!strcmp(argv[i], "--cmdline") && i + 1 < argc) opt_cmdline = argv[++i];
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) opt_repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--console")) opt_console = 1;
        else if (!strcmp(argv[i], "--krunfw") && i + 1 < argc) opt_krunfw = argv[++i];
        else if (argv[i][0] == '-' || opt_elf) usage();
        else opt_elf = argv[i];
    }
    if (!opt_cmdline) opt_cmdline = opt_krunfw ? KRUNFW_CMDLINE : "";
    if (opt_console && !strstr(opt_cmdline, "virtio_mmio.device=")) {
        snprintf(cmdline_buf, sizeof cmdline_buf, "%s%svirtio_mmio.device=4K@0xd0000000:5",
                 opt_cmdline, *opt_cmdline ? " " : "");
        opt_cmdline = cmdline_buf;
    }
    if (!opt_elf == !opt_krunfw || opt_cpus < 1 || opt_cpus > 64 || opt_mem < (2 << 20) || opt_repeat < 1) usage();

    struct sigaction sa = { .sa_handler = on_kick };   /* no SA_RESTART: KVM_RUN returns EINTR */
    sigaction(SIGUSR1, &sa, NULL);

    kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm_fd < 0) die("open /dev/kvm");
    if (ioctl(kvm_fd, KVM_GET_API_VERSION, 0) != 12) { errno = 0; die("KVM API version != 12"); }
    run_size = IOCTL(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    int nent = 256;
    supported = calloc(1, sizeof(*supported) + nent * sizeof(struct kvm_cpuid_entry2));
    supported->nent = nent;
    IOCTL(kvm_fd, KVM_GET_SUPPORTED_CPUID, supported);

    if (opt_krunfw) {   /* RAM = 16 MiB + image rounded to 64 KiB + requested, as jkrun boot sizes it */
        open_krunfw(opt_krunfw);
        opt_mem += (16ULL << 20) + ((kfw_size + 0xFFFF) & ~0xFFFFULL);
    }

    int code = 0;
    for (int k = 0; k < opt_repeat; k++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        code = run_cycle();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (opt_repeat > 1)
            fprintf(stderr, "cycle_us %lld\n",
                    (long long)((t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000));
    }
    return code;
}
