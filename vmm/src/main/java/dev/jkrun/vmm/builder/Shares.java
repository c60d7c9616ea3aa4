package dev.jkrun.vmm.builder;

import dev.jkrun.devices.fs.FileSystem;
import dev.jkrun.devices.fs.fuse.FuseServer;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.devices.fs.passthrough.PassthroughFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import dev.jkrun.devices.virtio.fs.VirtioFs;
import dev.jkrun.init.GuestInit;
import dev.jkrun.init.InitConfig;
import dev.jkrun.init.VirtioFsMount;
import dev.jkrun.vmm.FsShare;
import dev.jkrun.vmm.VmConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.IntConsumer;

/** virtio-fs shares and the guest init's view of them: device order, virtual root files, default mounts. */
final class Shares {
    private Shares() {}

    /**
     * One share's device. The root share of a VM with a command also serves init.krun and /.jkrun-config as
     * virtual read-only files that never exist on the host, and takes init's exit-status ioctl.
     */
    static VirtioFs device(FsShare share, Optional<InitConfig> exec, IntConsumer exitStatus) {
        if (share.backend().isPresent()) {
            FileSystem fs = share.backend().get().get();
            if (fs == null) {
                throw new ConfigurationException("fs.custom", "share '" + share.tag() + "': the backend factory returned null");
            }
            return new VirtioFs(share.tag(), new FuseServer(fs, share.readOnly()), fs instanceof AutoCloseable c ? c : null);
        }
        PassthroughOptions.Builder options = PassthroughOptions.builder().readOnly(share.readOnly());
        if (share.isRoot()) {
            options.exitCodeListener(exitStatus);
            exec.ifPresent(e -> options
                    .virtualFile(GuestInit.FILE_NAME, GuestInit.binary(), 0755)
                    .virtualFile(InitConfig.FILE_NAME, e.encode(), 0444));
        }
        PassthroughFs fs = new PassthroughFs(share.path(), options.build());
        return new VirtioFs(share.tag(), new FuseServer(fs, share.readOnly()), fs);
    }

    /** The command's init config with what the VM adds: /mnt/TAG for shares it does not mount, stdio wiring. */
    static InitConfig completeInit(InitConfig e, VmConfig config) {
        List<VirtioFsMount> mounts = new ArrayList<>(e.mounts());
        for (FsShare s : config.shares()) {
            if (!s.isRoot() && mounts.stream().noneMatch(m -> m.tag().equals(s.tag()))) {
                mounts.add(new VirtioFsMount(s.tag(), "/mnt/" + s.tag()));
            }
        }
        return new InitConfig(e.exec(), e.args(), e.env(), e.workdir(), e.hostname(), e.rlimits(), mounts, e.rootDisk(),
                Consoles.isTerminal(config.console()), Consoles.usesPorts(config.console()), e.resolvers());
    }
}
