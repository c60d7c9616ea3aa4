package dev.jkrun.loader;

/** A kernel file or bundle that cannot be loaded; {@link #reason()} says which rule it broke. */
public final class KernelFormatException extends RuntimeException {
    public enum Reason {
        /** The file could not be read. */
        IO,
        /** The file is neither ELF, bzImage nor arm64 Image (or the ELF magic is missing). */
        UNKNOWN_FORMAT,
        /** The file ends inside a header or table. */
        TRUNCATED,
        /** ELF class, data encoding, version, type or machine is not ELF64 little-endian x86_64 ET_EXEC. */
        UNSUPPORTED_ELF,
        /** A program header is inconsistent in itself (p_filesz larger than p_memsz). */
        BAD_SEGMENT,
        /** A segment's file bytes lie (partly) beyond the end of the file. */
        SEGMENT_BEYOND_FILE,
        /** Address or size arithmetic overflows 64 bits, or a size is absurd. */
        OVERFLOW,
        /** More program headers than a kernel plausibly has. */
        TOO_MANY_SEGMENTS,
        /** No PT_LOAD segment. */
        NO_SEGMENTS,
        /** Two PT_LOAD segments cover the same guest physical bytes. */
        OVERLAPPING_SEGMENTS,
        /** The entry point lies outside every loaded byte. */
        BAD_ENTRY,
        /** The bzImage setup header is missing or too old (boot protocol before 2.12 / no 64-bit entry). */
        UNSUPPORTED_BZIMAGE,
        /** The libkrunfw library cannot be opened or lacks the kernel symbols. */
        BAD_LIBRARY,
        /** libkrunfw reports an ABI version this loader does not speak. */
        UNSUPPORTED_VERSION,
        /** libkrunfw returned an impossible bundle (null pointer, unaligned load address, empty). */
        BAD_BUNDLE,
        /** A compressed kernel's stream is corrupt (the decoder failed). */
        BAD_COMPRESSION,
        /** An arm64 Image this VMM cannot run (big-endian). */
        UNSUPPORTED_IMAGE,
        /** The image does not fit in guest RAM. */
        DOES_NOT_FIT
    }

    private final Reason reason;

    public KernelFormatException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public KernelFormatException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public Reason reason() { return reason; }
}
