package dev.jkrun.vmm.builder;

import dev.jkrun.devices.fs.FileSystem;
import dev.jkrun.devices.fs.augment.AugmentFs;
import dev.jkrun.devices.fs.augment.VirtualEntry;
import dev.jkrun.devices.fs.dax.DaxWindow;
import dev.jkrun.devices.fs.fuse.FuseServer;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.devices.fs.overlay.OverlayFs;
import dev.jkrun.devices.fs.passthrough.PassthroughFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import dev.jkrun.devices.virtio.fs.VirtioFs;
import dev.jkrun.init.GuestInit;
import dev.jkrun.init.InitConfig;
import dev.jkrun.init.Resolvers;
import dev.jkrun.vmm.FsShare;
import dev.jkrun.vmm.VmConfig;
import dev.jkrun.vmm.NetDeviceConfig;
import dev.jkrun.vmm.VsockDeviceConfig;
import dev.jkrun.devices.virtio.vsock.tsi.TsiConfig;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.Optional;
import java.util.function.IntConsumer;
import java.util.function.Supplier;

/** virtio-fs shares and the guest init's view of them: device order, virtual root files, default mounts. */
final class Shares {
    private Shares() {}

    /**
     * One share's device. The root share of a VM with a command also serves /.jkrun-config and, when {@code
     * servesInit}, init.krun, as virtual read-only files that never exist on the host, and takes init's exit-status
     * ioctl. Without {@code servesInit} (libkrun's krun_disable_implicit_init) the root's own files are what the
     * guest sees, an init.krun there included. A share with lower layers is an {@link OverlayFs} of them under its
     * host path. The share's own virtual entries ({@link AugmentFs}) come on top and win over those files.
     */
    static VirtioFs device(FsShare share, Optional<InitConfig> exec, boolean servesInit, IntConsumer exitStatus) {
        return device(share, exec, servesInit, exitStatus, null);
    }

    /** {@link #device} with the share's DAX window (null: none), offered to the guest if the backend can map files. */
    static VirtioFs device(FsShare share, Optional<InitConfig> exec, boolean servesInit, IntConsumer exitStatus,
                           DaxWindow window) {
        List<VirtualEntry> virtual = new ArrayList<>();
        if (share.isRoot()) {
            exec.ifPresent(e -> {
                if (servesInit) {
                    virtual.add(VirtualEntry.file(GuestInit.FILE_NAME, GuestInit.binary(), 0755, false));
                }
                virtual.add(VirtualEntry.file(InitConfig.FILE_NAME, e.encode(), 0444, false));
            });
        }
        FileSystem fs;
        IntConsumer augmentExit = null;
        if (share.backend().isPresent()) {
            fs = share.backend().get().get();
            if (fs == null) {
                throw new ConfigurationException("fs.custom", "share '" + share.tag() + "': the backend factory returned null");
            }
            if (share.isRoot()) {
                augmentExit = exitStatus; // a custom root serves init's files and its ioctl through AugmentFs
            } else {
                virtual.clear();
            }
        } else {
            PassthroughOptions.Builder options = PassthroughOptions.builder().readOnly(share.readOnly())
                    .allowSetuid(share.allowSetuid());
            if (share.isRoot()) {
                options.exitCodeListener(exitStatus);
                virtual.forEach(v -> options.virtualFile(v.path(), v.content(), v.mode()));
            }
            virtual.clear();
            fs = share.lowerLayers().isEmpty() ? new PassthroughFs(share.path(), options.build())
                    : new OverlayFs(share.layers(), options.build());
        }
        // the share's own entries hide init's files of the same name
        Set<String> own = new HashSet<>();
        share.virtualEntries().forEach(v -> own.add(String.join("/", v.components())));
        virtual.removeIf(v -> own.contains(v.path()));
        virtual.addAll(share.virtualEntries());
        if (!virtual.isEmpty() || augmentExit != null) {
            fs = new AugmentFs(fs, virtual, augmentExit);
        }
        return new VirtioFs(share.tag(), new FuseServer(fs, share.readOnly(), window), fs instanceof AutoCloseable c ? c : null,
                share.requestQueues());
    }

    /**
     * The command's init config with what the VM adds: stdio wiring, and with TSI for INET sockets the host's
     * resolvers ({@link HostResolvers}) unless the config names its own. Shares are mounted where the config says
     * ({@code VmBuilder}'s and {@code jkrun run}'s /mnt/TAG default is theirs; through the libkrun interface init
     * mounts no extra share, as libkrun's).
     */
    static InitConfig completeInit(InitConfig e, VmConfig config) {
        return completeInit(e, config, HostResolvers::host);
    }

    static InitConfig completeInit(InitConfig e, VmConfig config, Supplier<Optional<Resolvers>> hostResolvers) {
        Resolvers resolvers = e.resolvers();
        if (resolvers == null && tsiInet(config)) {
            resolvers = hostResolvers.get().orElse(null);
        }
        List<String> dhcp = config.devices().stream().filter(d -> d instanceof NetDeviceConfig n && n.dhcp())
                .map(d -> ((NetDeviceConfig) d).name()).toList();
        return new InitConfig(e.exec(), e.args(), e.env(), e.workdir(), e.hostname(), e.rlimits(), e.mounts(), e.rootDisk(),
                Consoles.isTerminal(config.console()), Consoles.usesPorts(config.console()), resolvers, e.dhcp(), e.ipv4())
                .withDhcp(dhcp).withIpv4(config.devices().stream()
                        .filter(d -> d instanceof NetDeviceConfig n && n.ipv4() != null)
                        .map(d -> ((NetDeviceConfig) d).ipv4()).toList());
    }

    /** Whether the guest's AF_INET sockets go through TSI (tsi_hijack on the command line, see VmmBuilder). */
    static boolean tsiInet(VmConfig config) {
        return config.devices().stream().filter(d -> d instanceof VsockDeviceConfig)
                .map(d -> ((VsockDeviceConfig) d).vsock().tsi())
                .anyMatch(t -> t.enabled() && (t.scope() & TsiConfig.HIJACK_INET) != 0);
    }
}
