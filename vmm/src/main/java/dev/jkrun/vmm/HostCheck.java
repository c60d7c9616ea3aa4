package dev.jkrun.vmm;

import dev.jkrun.hvf.HvfHostCheck;
import dev.jkrun.hvf.NativeHvf;
import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.kvm.HostVirtualization;
import dev.jkrun.kvm.Kvm;
import dev.jkrun.loader.KrunfwBundle;
import dev.jkrun.loader.krunfw.KrunfwLocator;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** What this host offers jkrun, each finding with the fix for a problem (`jkrun check`). */
public record HostCheck(List<Finding> findings) {
    /** One finding; {@code fix} is empty when {@code ok}. */
    public record Finding(String subject, boolean ok, String value, String fix) {}

    public boolean allOk() { return findings.stream().allMatch(Finding::ok); }

    public static HostCheck run(Optional<Path> explicitKrunfw, Map<String, String> env) {
        List<Finding> f = new ArrayList<>();
        if (NativeHvf.isMacOs()) { // Hypervisor.framework: the framework, virtualization, the entitlement, the GIC
            for (HvfHostCheck.Finding h : HvfHostCheck.run(NativeHvf::instance)) {
                f.add(new Finding(h.subject(), h.ok(), h.value(), h.fix()));
            }
            return new HostCheck(List.copyOf(f));
        }
        Path dev = Path.of("/dev/kvm");
        if (!Files.exists(dev)) {
            f.add(new Finding("/dev/kvm", false, "missing", "load the kvm module (modprobe kvm_intel or kvm_amd) or run on a host with KVM"));
        } else if (!Files.isReadable(dev) || !Files.isWritable(dev)) {
            f.add(new Finding("/dev/kvm", false, "no read/write access", "add your user to the group owning /dev/kvm (usually kvm) and log in again"));
        } else {
            f.add(new Finding("/dev/kvm", true, "read/write", ""));
            try (Hypervisor kvm = HostHypervisor.open()) { // opening checks KVM's API version (12)
                f.add(new Finding("KVM API version", true, "12", ""));
                try {
                    kvm.requireCapabilities();
                    f.add(new Finding("KVM capabilities", true, "irqchip, ioeventfd, irqfd, user memory"
                            + ("aarch64".equals(System.getProperty("os.arch")) ? "" : ", TSS address"), ""));
                } catch (RuntimeException e) {
                    f.add(new Finding("KVM capabilities", false, e.getMessage(), "use a newer host kernel"));
                }
            } catch (RuntimeException e) {
                f.add(new Finding("KVM", false, e.getMessage(), "check that /dev/kvm is a working KVM device"));
            }
        }
        HostVirtualization hv = Kvm.hostVirtualization();
        switch (hv) {
            case HARDWARE_VMX, HARDWARE_SVM -> f.add(new Finding("virtualization", true, hv == HostVirtualization.HARDWARE_VMX ? "hardware (Intel VT-x)" : "hardware (AMD-V)", ""));
            case HARDWARE_ARM64 -> f.add(new Finding("virtualization", true, "hardware (arm64, KVM at EL2)", ""));
            case KVM_PVM -> f.add(new Finding("virtualization", false, "kvm-pvm (software; cannot boot stock kernels)",
                    "run on a host with VT-x/AMD-V, or inside the nested harness: ./jkrun-nested -- ./jkrun ..."));
            default -> f.add(new Finding("virtualization", false, "none", "enable VT-x/AMD-V in firmware, or use ./jkrun-nested"));
        }
        f.add(new Finding("nested virtualization", true, nested(), ""));
        try {
            Optional<KrunfwLocator.Found> found = KrunfwLocator.find(explicitKrunfw.orElse(null), env);
            if (found.isEmpty()) {
                f.add(new Finding("libkrunfw", false, "not found", "run ./jkrun once (it fetches libkrunfw), or set JKRUN_KRUNFW=/path/to/libkrunfw.so.5"));
            } else {
                KrunfwBundle b = KrunfwBundle.load(found.get().path());
                f.add(new Finding("libkrunfw", true, found.get().path() + " (" + found.get().source() + "), ABI " + b.version(), ""));
            }
        } catch (RuntimeException e) {
            f.add(new Finding("libkrunfw", false, e.getMessage(), "set JKRUN_KRUNFW to a libkrunfw.so.5, or delete the cached copy to fetch it again"));
        }
        return new HostCheck(List.copyOf(f));
    }

    private static String nested() {
        for (String m : List.of("kvm_intel", "kvm_amd")) {
            Path p = Path.of("/sys/module", m, "parameters", "nested");
            if (Files.isReadable(p)) {
                try {
                    String v = Files.readString(p).trim();
                    return m + " nested=" + v;
                } catch (java.io.IOException ignored) {
                    // fall through
                }
            }
        }
        return "not available (no kvm_intel/kvm_amd module)";
    }
}
