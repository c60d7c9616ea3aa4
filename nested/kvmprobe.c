/*
 * kvmprobe: checks /dev/kvm from inside L1 (see nested/README.md).
 *   kvmprobe api        prints "KVM_API_VERSION <n>"
 *   kvmprobe pio [N]    runs a 16-bit real-mode guest that does `out 0x10, al` N times
 *                       (default 1000) then `hlt`; prints exit counts and microseconds per exit
 * Exit status 0 on success, 1 on any failure (with a message on stderr).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "kvmprobe: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "api";
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("open /dev/kvm");
    int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
    if (api < 0) die("KVM_GET_API_VERSION");
    printf("KVM_API_VERSION %d\n", api);
    if (strcmp(mode, "api") == 0) return api == KVM_API_VERSION ? 0 : 1;
    if (strcmp(mode, "pio") != 0) {
        fprintf(stderr, "usage: kvmprobe api | kvmprobe pio [N]\n");
        return 2;
    }
    long n = argc > 2 ? strtol(argv[2], NULL, 0) : 1000;
    if (n < 1 || n > 65535) { fprintf(stderr, "kvmprobe: N must be 1..65535\n"); return 2; }

    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    size_t mem_size = 0x10000;
    uint8_t *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) die("mmap");
    /* at 0x1000:  mov cx, n ; l: out 0x10, al ; dec cx ; jnz l ; hlt */
    uint8_t code[] = {0xb9, (uint8_t)(n & 0xff), (uint8_t)(n >> 8), 0xe6, 0x10, 0x49, 0x75, 0xfb, 0xf4};
    memcpy(mem + 0x1000, code, sizeof code);
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = mem_size, .userspace_addr = (uint64_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) die("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < 0) die("KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) die("mmap kvm_run");

    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = 0x1000, .rflags = 0x2};
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");

    long io_exits = 0, other_exits = 0;
    double t0 = now_us();
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR) continue;
            die("KVM_RUN");
        }
        if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0x10 &&
            run->io.direction == KVM_EXIT_IO_OUT) {
            io_exits++;
        } else if (run->exit_reason == KVM_EXIT_HLT) {
            break;
        } else {
            other_exits++;
            if (other_exits > 100) {
                fprintf(stderr, "kvmprobe: unexpected exit reason %u\n", run->exit_reason);
                return 1;
            }
        }
    }
    double t1 = now_us();
    printf("PIO_EXITS %ld OTHER_EXITS %ld HLT 1\n", io_exits, other_exits);
    printf("PIO_TOTAL_US %.0f PIO_US_PER_EXIT %.1f\n", t1 - t0, (t1 - t0) / (io_exits ? io_exits : 1));
    return io_exits == n ? 0 : 1;
}
