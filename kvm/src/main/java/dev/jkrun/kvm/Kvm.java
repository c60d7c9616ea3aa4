package dev.jkrun.kvm;

import dev.jkrun.libc.Errno;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.Ioctl;
import dev.jkrun.libc.NativeCallException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import dev.jkrun.libc.NativeBuffer;

/** The /dev/kvm system fd: API checks, capabilities, host CPUID/MSR lists, VM creation. */
public final class Kvm implements dev.jkrun.hypervisor.Hypervisor {
    /** KVM_API_VERSION: the only version there has ever been since Linux 2.6.22. */
    public static final int API_VERSION = 12;
    private static final int E2BIG = 7;
    /** Starting size for KVM_GET_SUPPORTED_CPUID (KVM_MAX_CPUID_ENTRIES is 256); grown on E2BIG. */
    private static final int CPUID_START = 256, CPUID_LIMIT = 16384;

    private final FileDescriptor fd;
    private final int vcpuMmapSize;

    private Kvm(FileDescriptor fd) {
        this.fd = fd;
        this.vcpuMmapSize = Ioctl.call(fd, "KVM_GET_VCPU_MMAP_SIZE", KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 0L);
    }

    /** Whether this JVM runs on x86 (amd64), where KVM's x86-only calls apply. */
    static final boolean X86 = System.getProperty("os.arch").matches("amd64|x86_64");

    public static Kvm open() { return open(KvmAvailability.DEVICE); }

    @Override
    public String name() { return "KVM"; }

    /** Opens {@code path} read-write and checks the API version. */
    public static Kvm open(String path) {
        FileDescriptor fd;
        try {
            fd = FileDescriptor.open(path, FileDescriptor.O_RDWR);
        } catch (NativeCallException e) {
            throw switch (e.errno()) {
                case Errno.ENOENT, Errno.ENODEV, 6 /* ENXIO */ -> new KvmUnavailableException(path
                        + " is missing: load kvm (and kvm_intel, kvm_amd or kvm_pvm) or enable virtualisation", e);
                case Errno.EACCES, Errno.EPERM -> new KvmUnavailableException("no permission to open " + path
                        + ": add yourself to the kvm group (sudo usermod -aG kvm $USER) and log in again", e);
                default -> new KvmUnavailableException("cannot open " + path + ": " + e.getMessage(), e);
            };
        }
        try {
            Kvm kvm = new Kvm(fd);
            int version = kvm.apiVersion();
            if (version != API_VERSION) {
                throw new KvmUnavailableException(path + " speaks KVM API " + version + ", jkrun needs " + API_VERSION);
            }
            return kvm;
        } catch (RuntimeException e) {
            fd.close();
            throw e;
        }
    }

    public int apiVersion() {
        return Ioctl.call(fd, "KVM_GET_API_VERSION", KvmIoctls.KVM_GET_API_VERSION, 0L);
    }

    /** KVM_CHECK_EXTENSION: 0 when absent, otherwise 1 or a cap-specific number (see {@link KvmCap}). */
    public int checkExtension(int cap) {
        return Ioctl.call(fd, "KVM_CHECK_EXTENSION", KvmIoctls.KVM_CHECK_EXTENSION, cap);
    }

    /**
     * The vCPUs one VM may have: KVM_CAP_MAX_VCPUS, else KVM_CAP_NR_VCPUS (the recommended count), else 4, the
     * minimum Documentation/virt/kvm/api.rst promises when neither answers.
     */
    @Override
    public int maxVcpus() {
        int n = checkExtension(KvmCap.MAX_VCPUS);
        if (n <= 0) {
            n = checkExtension(KvmCap.NR_VCPUS);
        }
        return n > 0 ? n : 4;
    }

    /** Whether the host's KVM module lets guests run hypervisors of their own (kvm_intel/kvm_amd {@code nested}). */
    public static boolean nestedAllowed() {
        for (String p : java.util.List.of("/sys/module/kvm_intel/parameters/nested", "/sys/module/kvm_amd/parameters/nested")) {
            try {
                String v = java.nio.file.Files.readString(java.nio.file.Path.of(p)).trim();
                if (v.equals("1") || v.equalsIgnoreCase("Y")) {
                    return true;
                }
            } catch (java.io.IOException | RuntimeException ignored) {
                // module not loaded or not readable: not this one
            }
        }
        return false;
    }

    /** Throws naming the first of libkrun's required capabilities this host lacks (notes §1.2). */
    @Override
    public void requireCapabilities() {
        int[] x86 = X86 ? KvmCap.REQUIRED_X86 : new int[0];
        int[] all = java.util.stream.IntStream.concat(java.util.Arrays.stream(KvmCap.REQUIRED), java.util.Arrays.stream(x86)).toArray();
        for (int cap : all) {
            if (checkExtension(cap) <= 0) {
                throw new KvmUnavailableException("KVM lacks " + KvmCap.name(cap) + ", which jkrun requires");
            }
        }
    }

    /** Size of each vCPU's kvm_run mapping (KVM_GET_VCPU_MMAP_SIZE). */
    public int vcpuMmapSize() { return vcpuMmapSize; }

    /** KVM_GET_SUPPORTED_CPUID: the CPUID leaves KVM can expose; the base template for every vCPU. */
    public List<CpuidEntry> supportedCpuid() {
        for (int capacity = CPUID_START; capacity <= CPUID_LIMIT; capacity *= 2) {
            NativeBuffer p = Ioctl.allocate(ArgLayouts.CPUID2_HEADER + CpuidEntry.SIZE * capacity);
            p.putInt(ArgLayouts.CPUID2_NENT, capacity);
            try {
                Ioctl.call(fd, "KVM_GET_SUPPORTED_CPUID", KvmIoctls.KVM_GET_SUPPORTED_CPUID, p);
            } catch (NativeCallException e) {
                if (e.errno() == E2BIG) {
                    continue;
                }
                throw e;
            }
            int n = p.getInt(ArgLayouts.CPUID2_NENT);
            List<CpuidEntry> out = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                out.add(CpuidEntryLayout.read(p, ArgLayouts.CPUID2_ENTRIES + (long) CpuidEntry.SIZE * i));
            }
            return Collections.unmodifiableList(out);
        }
        throw new KvmException("KVM_GET_SUPPORTED_CPUID wants more than " + CPUID_LIMIT + " entries");
    }

    /** KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and restores. */
    public List<Integer> msrIndexList() {
        int capacity = 0; // the first call fails with E2BIG and tells how many there are
        for (int attempt = 0; attempt < 4; attempt++) {
            NativeBuffer p = Ioctl.allocate(ArgLayouts.MSR_LIST_SIZE + 4 * Math.max(capacity, 1));
            p.putInt(ArgLayouts.ML_NMSRS, capacity);
            try {
                Ioctl.call(fd, "KVM_GET_MSR_INDEX_LIST", KvmIoctls.KVM_GET_MSR_INDEX_LIST, p);
            } catch (NativeCallException e) {
                if (e.errno() == E2BIG) {
                    capacity = p.getInt(ArgLayouts.ML_NMSRS);
                    continue;
                }
                throw e;
            }
            int n = p.getInt(ArgLayouts.ML_NMSRS);
            List<Integer> out = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                out.add(p.getInt(ArgLayouts.ML_INDICES + 4L * i));
            }
            return Collections.unmodifiableList(out);
        }
        throw new KvmException("KVM_GET_MSR_INDEX_LIST kept growing");
    }

    /**
     * KVM_CREATE_VM type 0. Enables KVM_CAP_EXIT_ON_EMULATION_FAILURE where available, so that emulation failures
     * report the instruction bytes ({@link dev.jkrun.hypervisor.VcpuExit.InternalError#instructionBytes()}).
     */
    @Override
    public dev.jkrun.kvm.Vm createVm() {
        int rc = Ioctl.call(fd, "KVM_CREATE_VM", KvmIoctls.KVM_CREATE_VM, 0L);
        dev.jkrun.kvm.Vm vm = new dev.jkrun.kvm.Vm(FileDescriptor.adopt(rc, "kvm-vm"), vcpuMmapSize);
        if (checkExtension(KvmCap.EXIT_ON_EMULATION_FAILURE) > 0) {
            try {
                vm.enableCap(KvmCap.EXIT_ON_EMULATION_FAILURE, 1);
            } catch (NativeCallException e) {
                // Only diagnostics are lost: internal errors then come without instruction bytes.
            }
        }
        return vm;
    }

    /** What backs /dev/kvm here, from /proc/cpuinfo flags and /sys/module. */
    public static HostVirtualization hostVirtualization() {
        return HostVirtualization.detect(Path.of("/proc/cpuinfo"), Path.of("/sys/module"));
    }

    @Override
    public void close() { fd.close(); }
}
