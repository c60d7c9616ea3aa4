package dev.jkrun.loader.krunfw;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Just enough of a tar reader for npm package tarballs: ustar headers (name + prefix), pax 'x' path records
 * and GNU 'L' long names; octal or base-256 sizes. Reads sequentially from an (already gunzipped) stream.
 */
final class Tar {
    private static final int BLOCK = 512;

    /** One member; {@link #copyTo} or {@link #skip} must be called before the next {@link #next}. */
    record Entry(String name, char type, long size) {
        boolean isFile() { return type == '0' || type == '\0'; }
    }

    private final InputStream in;
    private long pendingData;
    private long pendingPad;

    Tar(InputStream in) { this.in = in; }

    /** The next member, or null at the end of the archive. */
    Entry next() throws IOException {
        skip();
        String longName = null;
        while (true) {
            byte[] h = in.readNBytes(BLOCK);
            if (h.length == 0 || isZero(h)) {
                return null;
            }
            if (h.length < BLOCK) {
                throw new IOException("truncated tar header");
            }
            String name = string(h, 0, 100);
            long size = number(h, 124, 12);
            char type = (char) (h[156] & 0xff);
            if (string(h, 257, 5).equals("ustar")) {
                String prefix = string(h, 345, 155);
                if (!prefix.isEmpty()) {
                    name = prefix + "/" + name;
                }
            }
            if (type == 'x' || type == 'L') {
                if (size > 1 << 20) {
                    throw new IOException("tar extended header too large: " + size);
                }
                byte[] data = in.readNBytes((int) size);
                in.skipNBytes(pad(size));
                String ext = type == 'L' ? string(data, 0, data.length) : paxPath(data);
                if (ext != null) {
                    longName = ext;
                }
                continue;
            }
            if (type == 'g') {
                in.skipNBytes(size + pad(size));
                continue;
            }
            pendingData = size;
            pendingPad = pad(size);
            return new Entry(longName != null ? longName : name, type, size);
        }
    }

    /** Copies the current member's data to {@code out}. */
    void copyTo(OutputStream out) throws IOException {
        byte[] buf = new byte[1 << 16];
        while (pendingData > 0) {
            int n = in.read(buf, 0, (int) Math.min(buf.length, pendingData));
            if (n < 0) {
                throw new IOException("truncated tar member");
            }
            out.write(buf, 0, n);
            pendingData -= n;
        }
    }

    /** Skips the rest of the current member. */
    void skip() throws IOException {
        in.skipNBytes(pendingData + pendingPad);
        pendingData = 0;
        pendingPad = 0;
    }

    private static long pad(long size) { return (BLOCK - size % BLOCK) % BLOCK; }

    private static boolean isZero(byte[] b) {
        for (byte x : b) {
            if (x != 0) {
                return false;
            }
        }
        return true;
    }

    private static String string(byte[] b, int off, int len) {
        int end = off;
        while (end < off + len && end < b.length && b[end] != 0) {
            end++;
        }
        return new String(b, off, end - off, StandardCharsets.UTF_8);
    }

    private static long number(byte[] b, int off, int len) throws IOException {
        if ((b[off] & 0x80) != 0) { // base-256 (GNU) for sizes >= 8 GiB
            long v = b[off] & 0x7f;
            for (int i = 1; i < len; i++) {
                v = (v << 8) | (b[off + i] & 0xff);
            }
            return v;
        }
        String s = string(b, off, len).trim();
        if (s.isEmpty()) {
            return 0;
        }
        try {
            return Long.parseLong(s, 8);
        } catch (NumberFormatException e) {
            throw new IOException("bad tar number: " + s);
        }
    }

    /** The "path" value of pax records ("<len> path=<value>\n"), or null. */
    private static String paxPath(byte[] data) {
        String s = new String(data, StandardCharsets.UTF_8);
        for (String rec : s.split("\n")) {
            int sp = rec.indexOf(' ');
            if (sp > 0 && rec.startsWith("path=", sp + 1)) {
                return rec.substring(sp + 6);
            }
        }
        return null;
    }
}
