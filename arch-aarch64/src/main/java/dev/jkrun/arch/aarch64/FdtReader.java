package dev.jkrun.arch.aarch64;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Reads a flattened device tree blob back into nodes (for checking what {@link DeviceTree} wrote, and for reading a
 * tree from guest memory). Every offset and length is checked against the blob before use; a blob that is not a
 * well-formed version-16+ tree is an {@link IllegalArgumentException} naming what is wrong, never an index error.
 */
public final class FdtReader {
    /** Deeper trees are refused (the kernel's own limit, FDT_MAX_DEPTH, is 64). */
    static final int MAX_DEPTH = 64;
    /** At most this many nodes and properties in all: a blob of repeating NOPs or tiny nodes stays cheap. */
    static final int MAX_ITEMS = 1 << 16;

    /** A node: its name (with unit address), properties in order, children in order. */
    public record Node(String name, Map<String, byte[]> properties, List<Node> children) {
        /** The child called {@code name} (exactly, unit address included), if any. */
        public Optional<Node> child(String name) {
            return children.stream().filter(c -> c.name.equals(name)).findFirst();
        }

        /** The node at a path such as {@code /chosen} or {@code /cpus/cpu@1}. */
        public Optional<Node> at(String path) {
            Node n = this;
            for (String part : path.split("/")) {
                if (part.isEmpty()) {
                    continue;
                }
                Optional<Node> c = n.child(part);
                if (c.isEmpty()) {
                    return Optional.empty();
                }
                n = c.get();
            }
            return Optional.of(n);
        }

        /** The string value of a property (up to its first NUL). */
        public Optional<String> string(String property) {
            byte[] v = properties.get(property);
            if (v == null) {
                return Optional.empty();
            }
            int end = 0;
            while (end < v.length && v[end] != 0) {
                end++;
            }
            return Optional.of(new String(v, 0, end, StandardCharsets.UTF_8));
        }

        /** The 32-bit cells of a property (its length must be a multiple of 4). */
        public Optional<int[]> cells(String property) {
            byte[] v = properties.get(property);
            if (v == null) {
                return Optional.empty();
            }
            if (v.length % 4 != 0) {
                throw new IllegalArgumentException("property " + property + " of " + name + " is " + v.length + " bytes, not cells");
            }
            int[] c = new int[v.length / 4];
            ByteBuffer.wrap(v).order(ByteOrder.BIG_ENDIAN).asIntBuffer().get(c);
            return Optional.of(c);
        }
    }

    private FdtReader() {}

    /** Parses {@code blob}; returns the root node. */
    public static Node read(byte[] blob) {
        ByteBuffer b = ByteBuffer.wrap(blob).order(ByteOrder.BIG_ENDIAN);
        need(blob.length >= Fdt.HEADER_SIZE, "a blob of " + blob.length + " bytes has no header");
        need(b.getInt(0) == Fdt.MAGIC, String.format("magic 0x%08x, not 0xd00dfeed", b.getInt(0)));
        long total = u32(b, 4), structOff = u32(b, 8), stringsOff = u32(b, 12);
        int version = b.getInt(20), lastCompatible = b.getInt(24);
        long stringsSize = u32(b, 32), structSize = u32(b, 36);
        need(total <= blob.length, "totalsize " + total + " beyond the blob's " + blob.length + " bytes");
        need(version >= 17 && lastCompatible <= 17, "version " + version + " (last compatible " + lastCompatible + ")");
        need(structOff + structSize <= total && stringsOff + stringsSize <= total, "a block past totalsize");
        need(structOff % 4 == 0, "structure block not 4-byte aligned");
        Parser p = new Parser(b, (int) structOff, (int) (structOff + structSize), (int) stringsOff, (int) stringsSize);
        return p.root();
    }

    private static final class Parser {
        private final ByteBuffer b;
        private final int end, stringsOff, stringsSize;
        private int at, items;

        Parser(ByteBuffer b, int start, int end, int stringsOff, int stringsSize) {
            this.b = b;
            this.at = start;
            this.end = end;
            this.stringsOff = stringsOff;
            this.stringsSize = stringsSize;
        }

        Node root() {
            int t = nextToken();
            need(t == Fdt.BEGIN_NODE, "the structure block does not start with a node");
            Node root = node(1);
            need(nextToken() == Fdt.END, "no END token after the root node");
            return root;
        }

        private int nextToken() {
            while (true) {
                need(at + 4 <= end, "the structure block ends inside a token");
                int t = b.getInt(at);
                at += 4;
                if (t != Fdt.NOP) {
                    return t;
                }
                need(++items <= MAX_ITEMS, "more than " + MAX_ITEMS + " items");
            }
        }

        /** After BEGIN_NODE: the name, then properties and children up to END_NODE. */
        private Node node(int depth) {
            need(depth <= MAX_DEPTH, "nodes nested deeper than " + MAX_DEPTH);
            int nul = nul(at, end);
            String name = string(at, nul);
            at = align4(nul + 1);
            Map<String, byte[]> props = new LinkedHashMap<>();
            List<Node> children = new ArrayList<>();
            while (true) {
                need(++items <= MAX_ITEMS, "more than " + MAX_ITEMS + " items");
                int t = nextToken();
                switch (t) {
                    case Fdt.PROP -> {
                        need(children.isEmpty(), "a property after a child node in " + name);
                        need(at + 8 <= end, "a property header past the structure block");
                        long len = u32(b, at), nameOff = u32(b, at + 4);
                        at += 8;
                        need(len <= end - at, "property length " + len + " past the structure block");
                        need(nameOff < stringsSize, "property name offset " + nameOff + " past the strings block");
                        int from = stringsOff + (int) nameOff;
                        String pname = string(from, nul(from, stringsOff + stringsSize));
                        byte[] v = new byte[(int) len];
                        b.get(at, v);
                        at = align4(at + (int) len);
                        props.put(pname, v);
                    }
                    case Fdt.BEGIN_NODE -> children.add(node(depth + 1));
                    case Fdt.END_NODE -> {
                        return new Node(name, props, List.copyOf(children));
                    }
                    default -> throw new IllegalArgumentException("device tree: token " + t + " at " + (at - 4));
                }
            }
        }

        /** The index of the NUL that ends the string at {@code from}, before {@code limit}. */
        private int nul(int from, int limit) {
            int i = from;
            while (i < limit && b.get(i) != 0) {
                i++;
            }
            need(i < limit, "a string without its NUL");
            return i;
        }

        private String string(int from, int nul) {
            byte[] s = new byte[nul - from];
            b.get(from, s);
            return new String(s, StandardCharsets.UTF_8);
        }
    }

    private static int align4(int v) { return (v + 3) & ~3; }

    private static long u32(ByteBuffer b, int at) { return b.getInt(at) & 0xFFFF_FFFFL; }

    private static void need(boolean ok, String what) {
        if (!ok) {
            throw new IllegalArgumentException("device tree: " + what);
        }
    }
}
