package dev.jkrun.vmm;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * What to boot. With no {@code kernel}, the libkrunfw bundle is used ({@code krunfw} overrides where it is found).
 * {@code cmdline} replaces libkrun's default prolog when present (as krun_set_kernel's cmdline does);
 * {@code extraCmdline} words are appended to either.
 */
public record KernelConfig(Optional<Path> kernel, Optional<Path> krunfw, Optional<String> cmdline, List<String> extraCmdline) {
    /** libkrun's default prolog (shared/notes §1.7), minus init=, which the run-a-command layer adds. */
    public static final String DEFAULT_PROLOG = "reboot=k panic=-1 panic_print=0 nomodule console=hvc0 rootfstype=virtiofs rw quiet no-kvmapf";

    public KernelConfig {
        kernel.ifPresent(p -> requireFile("kernel", p));
        krunfw.ifPresent(p -> requireFile("krunfw", p));
        extraCmdline = List.copyOf(extraCmdline);
    }

    public static KernelConfig bundled() { return new KernelConfig(Optional.empty(), Optional.empty(), Optional.empty(), List.of()); }

    public static KernelConfig elf(Path kernel, String cmdline) {
        return new KernelConfig(Optional.of(kernel), Optional.empty(), Optional.of(cmdline), List.of());
    }

    public KernelConfig withKrunfw(Path path) { return new KernelConfig(kernel, Optional.of(path), cmdline, extraCmdline); }

    public KernelConfig withCmdline(String c) { return new KernelConfig(kernel, krunfw, Optional.of(c), extraCmdline); }

    public KernelConfig withExtraCmdline(List<String> extra) { return new KernelConfig(kernel, krunfw, cmdline, extra); }

    private static void requireFile(String field, Path p) {
        if (!java.nio.file.Files.isRegularFile(p)) {
            throw new ConfigurationException(field, p + " does not exist or is not a file");
        }
        if (!java.nio.file.Files.isReadable(p)) {
            throw new ConfigurationException(field, p + " is not readable");
        }
    }
}
