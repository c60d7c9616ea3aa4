package dev.jkrun.arch.aarch64;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * Writes a flattened device tree blob (Devicetree Specification v0.4 ch. 5: version 17, big-endian): nodes opened and
 * closed in order, each node's properties before its children, one strings block with each name once. Misuse (a
 * property after a child, unbalanced nodes, a NUL in a name) throws at once rather than producing a blob the kernel
 * would misread.
 */
public final class Fdt {
    static final int MAGIC = 0xD00D_FEED, VERSION = 17, LAST_COMPATIBLE = 16, HEADER_SIZE = 40;
    static final int BEGIN_NODE = 1, END_NODE = 2, PROP = 3, NOP = 4, END = 9;

    private final ByteArrayOutputStream struct = new ByteArrayOutputStream();
    private final ByteArrayOutputStream strings = new ByteArrayOutputStream();
    private final Map<String, Integer> stringOffsets = new HashMap<>();
    private int depth;
    /** Whether the open node already has a child (then it takes no more properties). */
    private boolean hasChild;
    private boolean finished;

    /** Opens a node; the root is {@code ""}, others "name" or "name@unit". */
    public Fdt beginNode(String name) {
        check(depth > 0 || struct.size() == 0, "only one root node");
        checkName(name);
        if (depth == 0) {
            check(name.isEmpty(), "the root node's name is empty");
        } else {
            check(!name.isEmpty(), "a node below the root needs a name");
        }
        token(BEGIN_NODE);
        bytesPadded(cstring(name));
        depth++;
        hasChild = false;
        return this;
    }

    public Fdt endNode() {
        check(depth > 0, "endNode without an open node");
        token(END_NODE);
        depth--;
        hasChild = true; // the parent now has a child
        return this;
    }

    /** A property with raw bytes. */
    public Fdt property(String name, byte[] value) {
        check(depth > 0, "a property outside every node");
        check(!hasChild, "property " + name + " after a child node: properties come first");
        checkName(name);
        token(PROP);
        u32(struct, value.length);
        u32(struct, stringOffset(name));
        bytesPadded(value);
        return this;
    }

    /** An empty property (a flag such as {@code interrupt-controller}). */
    public Fdt property(String name) { return property(name, new byte[0]); }

    /** A string property, NUL-terminated. */
    public Fdt property(String name, String value) { return property(name, cstring(value)); }

    /** A string-list property: each NUL-terminated, one after another. */
    public Fdt propertyStrings(String name, String... values) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (String v : values) {
            b.writeBytes(cstring(v));
        }
        return property(name, b.toByteArray());
    }

    /** A property of 32-bit cells. */
    public Fdt propertyU32(String name, int... cells) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (int c : cells) {
            u32(b, c);
        }
        return property(name, b.toByteArray());
    }

    /** A property of 64-bit values (each two cells, high first). */
    public Fdt propertyU64(String name, long... values) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (long v : values) {
            u32(b, (int) (v >>> 32));
            u32(b, (int) v);
        }
        return property(name, b.toByteArray());
    }

    /** The blob: header, an empty memory reservation map, structure, strings. */
    public byte[] finish() {
        check(!finished, "finish called twice");
        check(depth == 0 && struct.size() > 0, "unbalanced nodes: " + depth + " still open");
        token(END);
        finished = true;
        int rsvmapOff = HEADER_SIZE; // 8-aligned
        int rsvmapSize = 16; // the terminating {0, 0}
        int structOff = rsvmapOff + rsvmapSize;
        int stringsOff = structOff + struct.size();
        int total = stringsOff + strings.size();
        ByteArrayOutputStream out = new ByteArrayOutputStream(total);
        u32(out, MAGIC);
        u32(out, total);
        u32(out, structOff);
        u32(out, stringsOff);
        u32(out, rsvmapOff);
        u32(out, VERSION);
        u32(out, LAST_COMPATIBLE);
        u32(out, 0); // boot_cpuid_phys
        u32(out, strings.size());
        u32(out, struct.size());
        out.writeBytes(new byte[rsvmapSize]);
        out.writeBytes(struct.toByteArray());
        out.writeBytes(strings.toByteArray());
        return out.toByteArray();
    }

    private int stringOffset(String name) {
        return stringOffsets.computeIfAbsent(name, n -> {
            int at = strings.size();
            strings.writeBytes(cstring(n));
            return at;
        });
    }

    private void token(int t) {
        check(!finished, "the blob is finished");
        u32(struct, t);
    }

    private void bytesPadded(byte[] b) {
        struct.writeBytes(b);
        for (int pad = (4 - b.length % 4) % 4; pad > 0; pad--) {
            struct.write(0);
        }
    }

    private static byte[] cstring(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        byte[] z = new byte[b.length + 1];
        System.arraycopy(b, 0, z, 0, b.length);
        return z;
    }

    private static void checkName(String name) {
        check(name.indexOf('\0') < 0, "a NUL in name " + name.replace('\0', '?'));
    }

    private static void u32(ByteArrayOutputStream b, int v) {
        b.write(v >>> 24);
        b.write(v >>> 16);
        b.write(v >>> 8);
        b.write(v);
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new IllegalStateException("device tree: " + what);
        }
    }
}
