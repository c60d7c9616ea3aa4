package dev.jkrun.arch.x86_64;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import java.nio.charset.StandardCharsets;

/** The kernel command line at {@link Layout#CMDLINE} (notes §1.7). */
public final class Cmdline {
    private Cmdline() {}

    /**
     * Checks libkrun's rules (linux-loader's Cmdline): only printable ASCII (0x20–0x7E), and the string plus its
     * NUL must fit in {@link Layout#CMDLINE_MAX}. Returns the size to put in boot_params.cmdline_size.
     */
    public static int validate(String cmdline) {
        if (cmdline.length() + 1 > Layout.CMDLINE_MAX) {
            throw new IllegalArgumentException("cmdline too long: " + cmdline.length() + " bytes, the limit is "
                    + (Layout.CMDLINE_MAX - 1));
        }
        for (int i = 0; i < cmdline.length(); i++) {
            char c = cmdline.charAt(i);
            if (c < 0x20 || c > 0x7E) {
                throw new IllegalArgumentException(
                        String.format("cmdline has a non-printable character 0x%x at %d", (int) c, i));
            }
        }
        return cmdline.length() + 1;
    }

    /** Validates and writes {@code cmdline} NUL-terminated at {@link Layout#CMDLINE}. */
    public static void write(GuestMemory mem, String cmdline) {
        int size = validate(cmdline);
        byte[] bytes = new byte[size];
        System.arraycopy(cmdline.getBytes(StandardCharsets.US_ASCII), 0, bytes, 0, size - 1);
        mem.write(GuestAddress.of(Layout.CMDLINE), bytes);
    }
}
