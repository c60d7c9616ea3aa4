package dev.jkrun.devices.fs;

/** The result of an ioctl: the return value and the bytes copied out to the caller. */
public record IoctlResult(int result, byte[] out) {}
