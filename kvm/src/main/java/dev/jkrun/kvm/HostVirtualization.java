package dev.jkrun.kvm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

/**
 * What backs /dev/kvm on this host. It matters for what guests can do and how fast: under {@link #KVM_PVM} ring-0
 * guest code is emulated instruction by instruction, and the emulator stops (KVM_EXIT_INTERNAL_ERROR) on some
 * instructions (SSE, xrstor, cmpxchg16b, int3, clac).
 */
public enum HostVirtualization {
    HARDWARE_VMX,
    HARDWARE_SVM,
    /** kvm-pvm: pagetable-based virtualisation, no hardware extensions (/sys/module/kvm_pvm). */
    KVM_PVM,
    /** arm64: KVM runs at EL2 (the architecture's virtualization extensions); /proc/cpuinfo names no flag for it. */
    HARDWARE_ARM64,
    NONE;

    static HostVirtualization detect(Path cpuinfo, Path sysModule) {
        if ("aarch64".equals(System.getProperty("os.arch"))) {
            return java.nio.file.Files.exists(Path.of(KvmAvailability.DEVICE)) ? HARDWARE_ARM64 : NONE;
        }
        Set<String> flags = new HashSet<>();
        try {
            for (String line : Files.readAllLines(cpuinfo)) {
                if (line.startsWith("flags")) {
                    int colon = line.indexOf(':');
                    flags.addAll(Arrays.asList(line.substring(colon + 1).trim().split("\\s+")));
                    break;
                }
            }
        } catch (IOException | RuntimeException e) {
            // no cpuinfo: fall through to the module check alone
        }
        return classify(flags, Files.isDirectory(sysModule.resolve("kvm_pvm")));
    }

    /** kvm-pvm wins when loaded: it is what /dev/kvm is then, even on a CPU that also has VMX or SVM. */
    static HostVirtualization classify(Set<String> cpuFlags, boolean pvmModuleLoaded) {
        if (pvmModuleLoaded) {
            return KVM_PVM;
        }
        if (cpuFlags.contains("vmx")) {
            return HARDWARE_VMX;
        }
        if (cpuFlags.contains("svm")) {
            return HARDWARE_SVM;
        }
        return NONE;
    }
}
