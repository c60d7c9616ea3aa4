package dev.jkrun.devices.block;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

/** Small valid images written from Java, for tests that must not depend on qemu-img (fuzz targets). */
public final class TinyImages {
    private TinyImages() {}

    /**
     * An empty qcow2 version 3 image of {@code size} bytes with 4 KiB clusters and 16-bit refcounts, as qemu-img
     * lays one out: header (cluster 0), refcount table (1), refcount block (2), L1 table (3 on), each counted once.
     */
    public static Path qcow2(Path file, long size) throws IOException {
        int cb = 12, cs = 1 << cb;
        long l1Size = Math.max(1, (size + (1L << (cb + cb - 3)) - 1) >> (cb + cb - 3));
        int l1Clusters = (int) ((l1Size * 8 + cs - 1) / cs);
        int clusters = 3 + l1Clusters;
        ByteBuffer b = ByteBuffer.allocate(clusters * cs);
        b.putInt(0, Qcow2Image.MAGIC).putInt(4, 3).putInt(20, cb).putLong(24, size).putInt(36, (int) l1Size)
                .putLong(40, 3L * cs).putLong(48, cs).putInt(56, 1).putInt(96, 4).putInt(100, 104);
        b.putLong(cs, 2L * cs); // refcount table[0] -> block at cluster 2
        for (int c = 0; c < clusters; c++) {
            b.putShort(2 * cs + 2 * c, (short) 1);
        }
        return Files.write(file, b.array());
    }

    /**
     * A VMDK descriptor {@code name} in {@code dir} with a FLAT extent of {@code flatBytes} in {@code name}-flat.bin
     * (filled with {@code fill}), then a ZERO extent and a read-only FLAT extent of {@code tailBytes} each.
     */
    public static Path vmdk(Path dir, String name, int flatBytes, int tailBytes, byte fill) throws IOException {
        byte[] flat = new byte[flatBytes];
        java.util.Arrays.fill(flat, fill);
        Files.write(dir.resolve(name + "-flat.bin"), flat);
        Files.write(dir.resolve(name + "-ro.bin"), new byte[tailBytes]);
        return Files.writeString(dir.resolve(name + ".vmdk"), "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\n\n"
                + "RW " + flatBytes / 512 + " FLAT \"" + name + "-flat.bin\" 0\n"
                + "RW " + tailBytes / 512 + " ZERO\n"
                + "RDONLY " + tailBytes / 512 + " FLAT \"" + name + "-ro.bin\" 0\n");
    }
}
