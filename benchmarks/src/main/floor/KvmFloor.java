import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The floor under {@code ./jkrun guest}'s start-up on the JVM (JDK 22+, FFM): a flat program that does a strict
 * subset of what cvmm and jkrun do for the exit_status guest. It opens /dev/kvm, creates a VM with 64 MiB of RAM
 * and one vCPU, maps its kvm_run, and closes it all again, through five libc functions (open, ioctl, mmap, munmap,
 * close) and no guest run, no register set-up, no devices. FixedCost times it as a process beside cvmm's complete
 * run: what the JVM, FFM linking and the KVM calls alone cost before any VMM logic. Compiled and run by FixedCost
 * with the JDK running it (not part of the benchmarks jar, which targets JDK 17).
 */
public final class KvmFloor {
    private static final long KVM_CREATE_VM = 0xAE01, KVM_GET_VCPU_MMAP_SIZE = 0xAE04, KVM_CREATE_VCPU = 0xAE41;
    private static final long KVM_SET_USER_MEMORY_REGION = 0x4020AE46L;
    private static final int O_RDWR = 2, O_CLOEXEC = 0x80000, PROT_RW = 3, MAP_SHARED = 1, MAP_PRIVATE_ANON = 0x22;

    public static void main(String[] args) throws Throwable {
        Linker linker = Linker.nativeLinker();
        SymbolLookup libc = linker.defaultLookup();
        MethodHandle open = linker.downcallHandle(libc.find("open").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
        MethodHandle ioctl = linker.downcallHandle(libc.find("ioctl").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
        MethodHandle mmap = linker.downcallHandle(libc.find("mmap").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
        MethodHandle munmap = linker.downcallHandle(libc.find("munmap").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
        MethodHandle close = linker.downcallHandle(libc.find("close").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        long ramSize = 64L << 20;
        try (Arena arena = Arena.ofConfined()) {
            int kvm = check((int) open.invokeExact(arena.allocateFrom("/dev/kvm"), O_RDWR | O_CLOEXEC), "open /dev/kvm");
            int vm = check((int) ioctl.invokeExact(kvm, KVM_CREATE_VM, 0L), "KVM_CREATE_VM");
            long ram = (long) mmap.invokeExact(0L, ramSize, PROT_RW, MAP_PRIVATE_ANON, -1, 0L);
            if (ram == -1) {
                throw new IllegalStateException("mmap guest RAM failed");
            }
            // struct kvm_userspace_memory_region { u32 slot, flags; u64 guest_phys_addr, memory_size, userspace_addr; }
            MemorySegment region = arena.allocate(32, 8);
            region.set(ValueLayout.JAVA_LONG, 16, ramSize);
            region.set(ValueLayout.JAVA_LONG, 24, ram);
            check((int) ioctl.invokeExact(vm, KVM_SET_USER_MEMORY_REGION, region.address()), "KVM_SET_USER_MEMORY_REGION");
            int vcpu = check((int) ioctl.invokeExact(vm, KVM_CREATE_VCPU, 0L), "KVM_CREATE_VCPU");
            int runSize = check((int) ioctl.invokeExact(kvm, KVM_GET_VCPU_MMAP_SIZE, 0L), "KVM_GET_VCPU_MMAP_SIZE");
            long run = (long) mmap.invokeExact(0L, (long) runSize, PROT_RW, MAP_SHARED, vcpu, 0L);
            if (run == -1) {
                throw new IllegalStateException("mmap kvm_run failed");
            }
            check((int) munmap.invokeExact(run, (long) runSize), "munmap kvm_run");
            check((int) close.invokeExact(vcpu), "close vcpu");
            check((int) close.invokeExact(vm), "close vm");
            check((int) munmap.invokeExact(ram, ramSize), "munmap RAM");
            check((int) close.invokeExact(kvm), "close /dev/kvm");
        }
    }

    private static int check(int r, String what) {
        if (r < 0) {
            throw new IllegalStateException(what + " failed");
        }
        return r;
    }
}
