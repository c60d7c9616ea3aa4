package dev.jkrun.loader;

/**
 * How a kernel file is stored: libkrun's {@code KRUN_KERNEL_FORMAT_*} as x86_64 libkrun loads them
 * ({@code load_external_kernel} in src/vmm/src/builder.rs). The IMAGE formats are an ELF vmlinux compressed whole;
 * like libkrun, the compressed stream starts at the first occurrence of its magic anywhere in the file.
 */
public enum KernelFormat {
    /** An ELF vmlinux (jkrun also takes a bzImage given as ELF: {@link Kernels#open(java.nio.file.Path)} sniffs). */
    ELF,
    /** gzip (1F 8B 08) of an ELF vmlinux. */
    IMAGE_GZ,
    /** zstd (28 B5 2F FD) of an ELF vmlinux. */
    IMAGE_ZSTD,
    /** bzip2 ("BZh", a block size digit, then the first block's "1AY&SY") of an ELF vmlinux. */
    IMAGE_BZ2,
    /** The file's bytes at 0x8000_0000, entered there ({@link RawKernel}). */
    RAW
}
