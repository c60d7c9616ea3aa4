package dev.jkrun.vmm.builder;

import static dev.jkrun.hvf.testing.FakeHvf.dataAbort;
import static dev.jkrun.hvf.testing.FakeHvf.hvc;
import static dev.jkrun.hvf.testing.FakeHvf.inspect;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.arch.aarch64.FdtReader;
import dev.jkrun.arch.aarch64.Layout;
import dev.jkrun.hvf.Hvf;
import dev.jkrun.hvf.testing.FakeHvf;
import dev.jkrun.libc.NativeBuffer;
import dev.jkrun.loader.KernelFormat;
import dev.jkrun.vmm.ConsoleConfig;
import dev.jkrun.vmm.KernelConfig;
import dev.jkrun.vmm.MachineConfig;
import dev.jkrun.vmm.StopReason;
import dev.jkrun.vmm.VmConfig;
import dev.jkrun.vmm.vstate.Vmm;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The aarch64 platform — the same layout, device tree, buses, devices and vCPU threads that boot Linux on KVM/arm64 —
 * built and run on Hypervisor.framework's seam, with a framework that replays what a guest would do ({@link FakeHvf}):
 * read its device tree, start its second CPU with PSCI, talk to devices through MMIO exits, and end with a status.
 */
@Timeout(60)
class HvfPlatformTest {
    static final long ENTRY = Layout.RAM_START;

    @Test
    void anAarch64VmRunsOnTheFrameworkSeam(@TempDir Path dir) throws Exception {
        Path kernel = Files.write(dir.resolve("kernel.bin"), new byte[4096]);
        VmConfig config = new VmConfig(MachineConfig.of(2, 64), KernelConfig.elf(kernel, "jkrun.hvf=1")
                .withKernelFormat(KernelFormat.RAW), new ConsoleConfig.None(), true);
        FakeHvf fake = new FakeHvf();
        AtomicReference<String> bootargs = new AtomicReference<>();
        AtomicReference<long[]> secondary = new AtomicReference<>();
        long ramEnd = Layout.RAM_START + (64L << 20);
        long fdt = Layout.fdtAddress(ramEnd);
        fake.script(0,
                inspect(v -> { // the boot CPU at the kernel's entry, X0 at the device tree in guest memory
                    assertEquals(ENTRY, v.regs[31]);
                    assertEquals(fdt, v.regs[0]);
                    long[] ram = fake.maps.get(Layout.RAM_START);
                    NativeBuffer blob = NativeBuffer.wrap(ram[0] + (fdt - Layout.RAM_START), Layout.FDT_MAX_SIZE);
                    byte[] b = new byte[(int) Layout.FDT_MAX_SIZE];
                    blob.get(0, b, 0, b.length);
                    bootargs.set(FdtReader.read(b).at("/chosen").orElseThrow().string("bootargs").orElseThrow());
                }, hvc(0xC400_0003L, 1, ENTRY + 0x800, 0x55)), // PSCI CPU_ON of the second CPU
                // three bytes to the first UART's place (no serial console configured: early output, as COM1 on x86)
                dataAbort(0x9301_0047L, Layout.SERIAL_START, 1, 'h'), dataAbort(0x9301_0047L, Layout.SERIAL_START, 1, 'i'),
                dataAbort(0x9301_0047L, Layout.SERIAL_START, 1, '\n'));
        fake.script(1,
                inspect(v -> secondary.set(new long[] {v.regs[31], v.regs[0]}),
                        dataAbort(0x9382_0007L, Layout.RTC + 0xFE0, 0, 0)), // ldr w2, [PL031 PeriphID0]
                inspect(v -> {
                    secondary.set(new long[] {secondary.get()[0], secondary.get()[1], v.regs[2]});
                    fake.script(0, dataAbort(0x9381_0047L, Layout.TEST_EXIT, 1, 42)); // now the boot CPU ends the VM
                }, hvc(0x8400_0002L, 0, 0, 0))); // CPU_OFF
        List<String> debug = new CopyOnWriteArrayList<>();
        Vmm vmm = VmmBuilder.build(config, new VmmBuilder.Options("hvf-test", System.err, debug::add),
                new Aarch64Platform(config), () -> Hvf.over(fake));
        vmm.start();
        StopReason r = vmm.stopped().get(30, TimeUnit.SECONDS);

        assertEquals(42, r.exitStatus().orElse(-1), r.toString());
        assertTrue(bootargs.get().contains("jkrun.hvf=1"), bootargs.get());
        assertEquals(ENTRY + 0x800, secondary.get()[0]);
        assertEquals(0x55, secondary.get()[1]);
        assertEquals(0x31, secondary.get()[2]); // the PL031's PrimeCell id, read through an MMIO exit
        assertEquals(List.of("hi"), debug);
        assertTrue(fake.log.contains(String.format("hv_gic_create(%#x, %#x)", Layout.GIC_DIST, Layout.gicRedistributors(2))),
                fake.log.toString());
        assertTrue(fake.log.contains(String.format("hv_vm_map(%#x, %#x)", Layout.RAM_START, 64L << 20)));
        assertEquals(2, fake.log.stream().filter(l -> l.startsWith("hv_vcpu_destroy")).count()); // on their threads
        assertFalse(fake.vmOpen); // hv_vm_destroy after them
        // the next VM of this process may open now (the framework allows one at a time)
        Hvf.over(fake).createVm().close();
    }
}
