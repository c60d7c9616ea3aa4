package dev.jkrun.devices.block;

/** The on-disk format of an image; always given by the user, never probed from the file's contents. */
public enum ImageFormat {
    RAW, QCOW2, VMDK
}
