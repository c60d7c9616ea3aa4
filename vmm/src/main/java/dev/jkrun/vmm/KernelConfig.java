package dev.jkrun.vmm;

import dev.jkrun.loader.KernelFormat;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * What to boot. With no {@code kernel}, the libkrunfw bundle is used ({@code krunfw} overrides where it is found).
 * {@code cmdline} replaces libkrun's default prolog when present (as krun_set_kernel's cmdline does);
 * {@code extraCmdline} words are appended to either. {@code initPath} names the guest's init (kernel {@code init=})
 * instead of jkrun's virtual {@code /init.krun}, which the root share then does not serve (naming
 * {@code /init.krun} itself is libkrun's krun_disable_implicit_init: the root's own file runs). {@code initramfs} is
 * copied to the top of guest RAM and announced in the zero page (krun_set_kernel's initramfs); it needs an external
 * {@code kernel}, as in libkrun. {@code kernelFormat} says how that kernel is stored (an ELF, or an ELF compressed
 * with gzip, zstd or bzip2). {@code firmware} (libkrun's krun_set_firmware) boots a firmware image instead of any kernel:
 * placed so that it ends at 4 GiB and entered from the reset vector with the vCPUs in their reset state; at most
 * {@link #MAX_FIRMWARE} bytes (what fits above KVM's TSS), not with a kernel or an initramfs.
 */
public record KernelConfig(Optional<Path> kernel, Optional<Path> krunfw, Optional<String> cmdline, List<String> extraCmdline,
                           Optional<String> initPath, Optional<Path> initramfs, KernelFormat kernelFormat,
                           Optional<Path> firmware) {
    /** libkrun's default prolog (src/vmm/src/vmm_config/kernel_cmdline.rs), minus init=, which the run-a-command layer adds. */
    public static final String DEFAULT_PROLOG = "reboot=k panic=-1 panic_print=0 nomodule console=hvc0 rootfstype=virtiofs rw quiet no-kvmapf";
    /** The largest firmware image: [0xFFFC_0000, 4 GiB), above the TSS and identity-map pages KVM needs below it. */
    public static final long MAX_FIRMWARE = 256 << 10;

    public KernelConfig {
        kernel.ifPresent(p -> requireFile("kernel.path", p));
        krunfw.ifPresent(p -> requireFile("kernel.krunfw_path", p));
        initramfs.ifPresent(p -> requireFile("kernel.initramfs", p));
        java.util.Objects.requireNonNull(kernelFormat, "kernelFormat");
        firmware = firmware == null ? Optional.empty() : firmware;
        firmware.ifPresent(p -> {
            requireFile("kernel.firmware", p);
            long size;
            try {
                size = java.nio.file.Files.size(p);
            } catch (java.io.IOException e) {
                throw new ConfigurationException("kernel.firmware", p + ": " + e.getMessage());
            }
            if (size == 0 || size > MAX_FIRMWARE) {
                throw new ConfigurationException("kernel.firmware", p + " is " + size + " bytes; a firmware image is 1 to "
                        + MAX_FIRMWARE + " bytes (it ends at 4 GiB, above KVM's TSS)");
            }
        });
        if (firmware.isPresent() && (kernel.isPresent() || initramfs.isPresent())) {
            throw new ConfigurationException("kernel.firmware", "boots instead of a kernel: not with kernel.path or kernel.initramfs");
        }
        if (initramfs.isPresent() && kernel.isEmpty()) {
            throw new ConfigurationException("kernel.initramfs", "needs an external kernel (kernel.path): the libkrunfw bundle boots without one");
        }
        extraCmdline = List.copyOf(extraCmdline);
        for (String w : extraCmdline) {
            if (w.indexOf('\0') >= 0) {
                throw new ConfigurationException("kernel.cmdline", "holds a NUL character");
            }
        }
        initPath.ifPresent(p -> {
            if (!p.startsWith("/") || p.indexOf(' ') >= 0 || p.indexOf('\0') >= 0) {
                throw new ConfigurationException("kernel.init_path", "must be an absolute guest path without spaces, got '" + p + "'");
            }
        });
    }

    public KernelConfig(Optional<Path> kernel, Optional<Path> krunfw, Optional<String> cmdline, List<String> extraCmdline,
                        Optional<String> initPath, Optional<Path> initramfs, KernelFormat kernelFormat) {
        this(kernel, krunfw, cmdline, extraCmdline, initPath, initramfs, kernelFormat, Optional.empty());
    }

    public KernelConfig(Optional<Path> kernel, Optional<Path> krunfw, Optional<String> cmdline, List<String> extraCmdline,
                        Optional<String> initPath) {
        this(kernel, krunfw, cmdline, extraCmdline, initPath, Optional.empty(), KernelFormat.ELF);
    }

    public KernelConfig(Optional<Path> kernel, Optional<Path> krunfw, Optional<String> cmdline, List<String> extraCmdline) {
        this(kernel, krunfw, cmdline, extraCmdline, Optional.empty());
    }

    public static KernelConfig bundled() { return new KernelConfig(Optional.empty(), Optional.empty(), Optional.empty(), List.of()); }

    public static KernelConfig elf(Path kernel, String cmdline) {
        return new KernelConfig(Optional.of(kernel), Optional.empty(), Optional.of(cmdline), List.of());
    }

    public KernelConfig withKrunfw(Path path) { return new KernelConfig(kernel, Optional.of(path), cmdline, extraCmdline, initPath, initramfs, kernelFormat, firmware); }

    public KernelConfig withCmdline(String c) { return new KernelConfig(kernel, krunfw, Optional.of(c), extraCmdline, initPath, initramfs, kernelFormat, firmware); }

    public KernelConfig withExtraCmdline(List<String> extra) { return new KernelConfig(kernel, krunfw, cmdline, extra, initPath, initramfs, kernelFormat, firmware); }

    public KernelConfig withInitPath(String path) { return new KernelConfig(kernel, krunfw, cmdline, extraCmdline, Optional.of(path), initramfs, kernelFormat, firmware); }

    public KernelConfig withInitramfs(Path path) { return new KernelConfig(kernel, krunfw, cmdline, extraCmdline, initPath, Optional.of(path), kernelFormat, firmware); }

    public KernelConfig withKernelFormat(KernelFormat f) { return new KernelConfig(kernel, krunfw, cmdline, extraCmdline, initPath, initramfs, f, firmware); }

    /** The same with a firmware image to boot instead of a kernel (krun_set_firmware). */
    public KernelConfig withFirmware(Path path) {
        return new KernelConfig(kernel, krunfw, cmdline, extraCmdline, initPath, initramfs, kernelFormat, Optional.of(path));
    }

    private static void requireFile(String field, Path p) {
        if (!java.nio.file.Files.isRegularFile(p)) {
            throw new ConfigurationException(field, p + " does not exist or is not a file");
        }
        if (!java.nio.file.Files.isReadable(p)) {
            throw new ConfigurationException(field, p + " is not readable");
        }
    }
}
