package dev.jkrun.init;

/**
 * A block device that becomes the guest's root (BoxLite/libkrun "block root"): the init mounts
 * it, moves it onto {@code /} and chroots into it. Encoded as {@code DEVICE:FSTYPE:OPTIONS}.
 *
 * @param device the guest device, e.g. {@code /dev/vda}
 * @param fstype the filesystem type; empty to try each block filesystem the kernel knows
 * @param options mount(2) data, e.g. {@code discard}; may be empty
 */
public record RootDisk(String device, String fstype, String options) {

    public RootDisk {
        if (device == null || device.isEmpty() || device.indexOf(':') >= 0 || device.indexOf('\0') >= 0) {
            throw new InvalidInitConfigException("root-disk", "device '" + device + "' is empty or holds ':' or NUL");
        }
        fstype = fstype == null ? "" : fstype;
        options = options == null ? "" : options;
        if (fstype.indexOf(':') >= 0 || fstype.indexOf('\0') >= 0) {
            throw new InvalidInitConfigException("root-disk", "fstype '" + fstype + "' holds ':' or NUL");
        }
        if (options.indexOf('\0') >= 0) {
            throw new InvalidInitConfigException("root-disk", "options hold NUL");
        }
    }

    String encode() {
        return device + ":" + fstype + ":" + options;
    }
}
