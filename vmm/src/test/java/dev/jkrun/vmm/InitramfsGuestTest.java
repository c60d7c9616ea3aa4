package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.kvm.testing.KvmAvailable;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.loader.KernelFormat;
import dev.jkrun.loader.KernelFormatException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Random;
import java.util.zip.CRC32;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * krun_set_kernel's initramfs on real KVM: the {@code initrd} test guest finds it through the zero page
 * (ramdisk_image/ramdisk_size and their ext_ halves, as Linux does), checks it lies in e820 RAM above the guest,
 * and reports the CRC-32 of the bytes it reads there, which must be the host file's.
 */
class InitramfsGuestTest {
    private static final long MIB = 1 << 20;

    @TempDir
    Path dir;

    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    private Path randomFile(String name, int size, long seed) throws Exception {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return Files.write(dir.resolve(name), b);
    }

    private static long crc(Path p) throws Exception {
        CRC32 c = new CRC32();
        c.update(Files.readAllBytes(p));
        return c.getValue();
    }

    private static VmConfig config(long memMib, Path initramfs) {
        return new VmConfig(MachineConfig.of(1, memMib), KernelConfig.elf(TestGuests.path("initrd"), "").withInitramfs(initramfs),
                new ConsoleConfig.None(), true);
    }

    @Test
    void theGuestReadsTheFileAtTheTopOfRam() throws Exception {
        int size = 3 * (int) MIB + 123;
        Path f = randomFile("initramfs.cpio", size, 1);
        GuestRun r = GuestRun.run(config(64, f), Duration.ofSeconds(120));
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.output() + r.reason());
        // 64 MiB of RAM; the file ends within the last page: 64 MiB − 3 MiB − 1 page.
        long at = 64 * MIB - 3 * MIB - 0x1000;
        assertTrue(r.lines().contains("INITRD 0x" + Long.toHexString(at) + " size " + size), r.output());
        assertTrue(r.lines().contains("CRC 0x" + Long.toHexString(crc(f))), r.output() + " host crc " + Long.toHexString(crc(f)));
    }

    @Test
    void aboveFourGibThroughTheExtFields() throws Exception {
        // 4 GiB of RAM: 3.25 GiB below the MMIO hole and 768 MiB from 4 GiB; the initramfs goes to the top of the latter.
        int size = 2 * (int) MIB;
        Path f = randomFile("big.cpio", size, 2);
        GuestRun r = GuestRun.run(config(4096, f), Duration.ofSeconds(120));
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.output() + r.reason());
        long top = 0x1_0000_0000L + 768 * MIB;
        assertTrue(r.lines().contains("INITRD 0x" + Long.toHexString(top - size) + " size " + size), r.output());
        assertTrue(r.lines().contains("CRC 0x" + Long.toHexString(crc(f))), r.output());
    }

    private Path compressed(KernelFormat f) throws Exception {
        byte[] elf = Files.readAllBytes(TestGuests.path("initrd"));
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        out.write("a header before the stream".getBytes()); // libkrun looks for the magic anywhere
        try (java.io.OutputStream z = switch (f) {
            case IMAGE_GZ -> new java.util.zip.GZIPOutputStream(out);
            case IMAGE_BZ2 -> new org.apache.commons.compress.compressors.bzip2.BZip2CompressorOutputStream(out);
            default -> new io.airlift.compress.zstd.ZstdOutputStream(out);
        }) {
            z.write(elf);
        }
        return Files.write(dir.resolve("initrd." + f), out.toByteArray());
    }

    @Test
    void gzipZstdAndBzip2CompressedKernelsBootWithTheirInitramfs() throws Exception {
        Path f = randomFile("initramfs.cpio", 100_000, 4);
        for (KernelFormat format : new KernelFormat[] {KernelFormat.IMAGE_GZ, KernelFormat.IMAGE_ZSTD, KernelFormat.IMAGE_BZ2}) {
            KernelConfig k = new KernelConfig(Optional.of(compressed(format)), Optional.empty(), Optional.of(""), List.of(),
                    Optional.empty(), Optional.of(f), format);
            GuestRun r = GuestRun.run(new VmConfig(MachineConfig.of(1, 32), k, new ConsoleConfig.None(), true), Duration.ofSeconds(120));
            assertEquals(OptionalInt.of(0), r.reason().exitStatus(), format + ": " + r.output() + r.reason());
            assertTrue(r.lines().contains("CRC 0x" + Long.toHexString(crc(f))), format + ": " + r.output());
        }
    }

    @Test
    void aCompressedKernelThatInflatesPastRamIsRefused() throws Exception {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        try (java.io.OutputStream z = new java.util.zip.GZIPOutputStream(out)) {
            z.write(new byte[40 << 20]);
        }
        Path bomb = Files.write(dir.resolve("bomb.gz"), out.toByteArray());
        KernelConfig k = new KernelConfig(Optional.of(bomb), Optional.empty(), Optional.of(""), List.of(), Optional.empty(),
                Optional.empty(), KernelFormat.IMAGE_GZ);
        KernelFormatException e = assertThrows(KernelFormatException.class,
                () -> GuestRun.run(new VmConfig(MachineConfig.of(1, 32), k, new ConsoleConfig.None(), true), Duration.ofSeconds(60)));
        assertEquals(KernelFormatException.Reason.OVERFLOW, e.reason(), e.getMessage());
    }

    @Test
    void kernelAndInitramfsFromDescriptorsAndANamedVm() throws Exception {
        // AVF's setKernel(fd), setInitRd(fd) and setName: the caller keeps the descriptors; the VM's threads carry the name
        Path f = randomFile("fd.cpio", 200_000, 5);
        Path k = compressed(KernelFormat.IMAGE_ZSTD);
        try (FileDescriptor kfd = FileDescriptor.open(k.toString(), FileDescriptor.O_RDONLY | FileDescriptor.O_CLOEXEC);
             FileDescriptor ifd = FileDescriptor.open(f.toString(), FileDescriptor.O_RDONLY | FileDescriptor.O_CLOEXEC)) {
            VmConfig config = VmBuilder.create().machine(m -> m.memoryMib(32).name("boot-fds"))
                    .kernel(b -> b.kernelFd(kfd.raw()).kernelFormat(KernelFormat.IMAGE_ZSTD).initramfsFd(ifd.raw()).replaceCmdline(""))
                    .console(c -> c.disableImplicit()).build().withTestExitPort(true);
            List<String> threads;
            StopReason reason;
            String out;
            try (VirtualMachine vm = VirtualMachine.create(config, System.err, null)) {
                vm.start();
                threads = Thread.getAllStackTraces().keySet().stream().map(Thread::getName)
                        .filter(n -> n.startsWith("jkrun-vm")).toList();
                reason = vm.waitForStop(Duration.ofSeconds(120)).orElseThrow();
                out = vm.debugOutput();
            }
            assertEquals(OptionalInt.of(0), reason.exitStatus(), out + reason);
            assertTrue(out.lines().toList().contains("CRC 0x" + Long.toHexString(crc(f))), out);
            assertTrue(threads.stream().anyMatch(n -> n.matches("jkrun-vm[0-9]+-boot-fds-vcpu0")), threads.toString());
            assertTrue(kfd.raw() >= 0 && Files.isRegularFile(Path.of("/proc/self/fd/" + kfd.raw())), "still the caller's");
        }
    }

    @Test
    void memfdBackedRamHoldsWhatTheGuestReads() throws Exception {
        // AVF's custom memory backing file: RAM (4 GiB: below the hole and above 4 GiB) in one memfd, which holds the
        // initramfs where the guest finds it
        int size = 2 * (int) MIB;
        Path f = randomFile("memfd.cpio", size, 6);
        VmConfig config = new VmConfig(MachineConfig.of(1, 4096).withMemfdBacked(true),
                KernelConfig.elf(TestGuests.path("initrd"), "").withInitramfs(f), new ConsoleConfig.None(), true);
        try (VirtualMachine vm = VirtualMachine.create(config, System.err, null)) {
            dev.jkrun.memory.MmapGuestMemory mem = vm.vmm().memory();
            FileDescriptor memfd = mem.memfd().orElseThrow();
            long at = 0x1_0000_0000L + 768 * MIB - size;
            byte[] inMemfd = new byte[size];
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(Path.of("/proc/self/fd/" + memfd.raw()))) {
                java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(inMemfd);
                while (b.hasRemaining() && ch.read(b, mem.memfdOffset(dev.jkrun.memory.GuestAddress.of(at)) + b.position()) > 0) { }
            }
            assertTrue(java.util.Arrays.equals(Files.readAllBytes(f), inMemfd), "the initramfs is in the memfd");
            vm.start();
            StopReason reason = vm.waitForStop(Duration.ofSeconds(120)).orElseThrow();
            assertEquals(OptionalInt.of(0), reason.exitStatus(), vm.debugOutput() + reason);
            assertTrue(vm.debugOutput().lines().toList().contains("INITRD 0x" + Long.toHexString(at) + " size " + size), vm.debugOutput());
            assertTrue(vm.debugOutput().lines().toList().contains("CRC 0x" + Long.toHexString(crc(f))), vm.debugOutput());
        }
    }

    @Test
    void badNamesAndDescriptorsAreConfigurationErrors() {
        for (String bad : new String[] {"", "a b", "x/y", "é", "n".repeat(65), "a\nb"}) {
            ConfigurationException e = assertThrows(ConfigurationException.class, () -> MachineConfig.of(1, 32).withName(bad));
            assertEquals("machine.name", e.field(), bad);
        }
        assertEquals(Optional.of("db-1.test_2"), MachineConfig.of(1, 32).withName("db-1.test_2").name());
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> VmBuilder.create().kernel(k -> k.kernelFd(-1)));
        assertEquals("kernel.fd", e.field());
        ConfigurationException closed = assertThrows(ConfigurationException.class,
                () -> VmBuilder.create().kernel(k -> k.kernelFd(999_999)));
        assertEquals("kernel.fd", closed.field(), closed.getMessage());
        assertTrue(closed.getMessage().contains("not open"), closed.getMessage());
        ConfigurationException initrd = assertThrows(ConfigurationException.class,
                () -> VmBuilder.create().kernel(k -> k.initramfsFd(999_999)));
        assertEquals("kernel.initramfs_fd", initrd.field(), initrd.getMessage());
    }

    @Test
    void withoutAnInitramfsTheFieldsStayZero() throws Exception {
        GuestRun r = GuestRun.run("initrd", 1, 32, "");
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.output() + r.reason());
        assertEquals(List.of("INITRD none"), r.lines(), r.output());
    }

    @Test
    void tooBigForRamIsAConfigurationErrorNamingTheField() throws Exception {
        Path f = dir.resolve("huge.cpio");
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.setLength(40 * MIB);  // sparse: only its size matters
        }
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> GuestRun.run(config(32, f), Duration.ofSeconds(60)));
        assertEquals("kernel.initramfs", e.field(), e.getMessage());
        assertTrue(e.getMessage().contains("does not fit in guest RAM"), e.getMessage());
    }

    @Test
    void anEmptyOrMissingFileIsAConfigurationError() throws Exception {
        Path empty = Files.createFile(dir.resolve("empty.cpio"));
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> GuestRun.run(config(32, empty), Duration.ofSeconds(60)));
        assertEquals("kernel.initramfs", e.field(), e.getMessage());
        ConfigurationException missing = assertThrows(ConfigurationException.class, () -> config(32, dir.resolve("nope")));
        assertEquals("kernel.initramfs", missing.field(), missing.getMessage());
    }

    @Test
    void anInitramfsNeedsAnExternalKernel() throws Exception {
        Path f = randomFile("x.cpio", 100, 3);
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> new KernelConfig(Optional.empty(),
                Optional.empty(), Optional.empty(), List.of(), Optional.empty(), Optional.of(f), KernelFormat.ELF));
        assertEquals("kernel.initramfs", e.field(), e.getMessage());
    }
}
