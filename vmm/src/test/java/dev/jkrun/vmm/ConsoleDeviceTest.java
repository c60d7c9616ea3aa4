package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.kvm.testing.KvmAvailable;
import dev.jkrun.libc.Poll;
import dev.jkrun.libc.Terminal;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.OptionalInt;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * virtio-console through real KVM: the console test guest negotiates over virtio-mmio, writes through the tx
 * queue, waits (sti; hlt) for host input on the rx queue — delivered by irqfd → IOAPIC → LAPIC → its IDT — and
 * echoes it back uppercased.
 */
class ConsoleDeviceTest {
    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    private static final int TIMEOUT_MS = 3000;

    private static VmConfig config(ConsoleConfig console) {
        return new VmConfig(MachineConfig.of(1, 64), KernelConfig.elf(TestGuests.path("console"), "jkrun.test.timeout_ms=" + TIMEOUT_MS + ""), console, true);
    }

    @Test
    void roundTripWithInterrupts() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ConsoleConfig console = new ConsoleConfig.Streams(new ByteArrayInputStream("hello host\n".getBytes(StandardCharsets.US_ASCII)), out);
        GuestRun r = GuestRun.run(config(console), Duration.ofSeconds(60));
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.output() + r.reason());
        assertTrue(r.output().contains("VIRTIO 0xd0000000 irq 5"), r.output());
        assertTrue(r.output().contains("OK tx"), r.output());
        assertTrue(r.output().contains("RX hello host"), r.output());
        assertTrue(r.output().lines().anyMatch(l -> l.startsWith("IRQS ") && !l.equals("IRQS 0")), "interrupts taken: " + r.output());
        assertEquals("hello from guest\nHELLO HOST\n", out.toString(StandardCharsets.US_ASCII));
    }

    /**
     * {@link VirtualMachine#deviceState()} (what {@code kill -USR1} prints before the vCPUs) while the guest waits on
     * its rx queue with buffers posted and nothing to read: the console's transport, driver OK, its rx ring ahead of
     * the device's, and jkrun's IOAPIC pin of the console's line (split irqchip); nothing once the VM is closed.
     */
    @Test
    void deviceStateShowsAGuestWaitingOnItsRxQueue() throws Exception {
        java.io.PipedOutputStream feed = new java.io.PipedOutputStream();
        java.io.PipedInputStream in = new java.io.PipedInputStream(feed);
        ByteArrayOutputStream out = new ByteArrayOutputStream(); // synchronized: the device thread writes it
        VmConfig config = new VmConfig(MachineConfig.of(1, 64).withSplitIrqchip(true),
                KernelConfig.elf(TestGuests.path("console"), "jkrun.test.timeout_ms=30000"),
                new ConsoleConfig.Streams(in, out), true);
        java.util.List<String> state;
        try (VirtualMachine vm = VirtualMachine.create(config, System.err, null)) {
            vm.start();
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (!out.toString(StandardCharsets.US_ASCII).contains("hello from guest\n") && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            Thread.sleep(200); // the guest posts its rx buffers after the tx completes
            state = vm.deviceState();
            feed.write("bye\n".getBytes(StandardCharsets.US_ASCII));
            feed.flush();
            assertEquals(OptionalInt.of(0), vm.waitForStop(Duration.ofSeconds(30)).orElseThrow().exitStatus());
            assertEquals(java.util.List.of(), vm.deviceState(), "a stopped VM reports nothing");
        }
        String all = String.join("\n", state);
        assertTrue(state.stream().anyMatch(l -> l.matches(
                "virtio-mmio 0xd0000000 irq 5 (\\(level line (low|high)\\) )?type 3: status 0xf isr \\d; q0 avail [1-9]\\d* flags \\d+ used_event \\d+ \\| used 0 .*\\| device next avail 0 next used 0;.*")),
                all);
        // a line of its own is an edge through an irqfd; where the platform shares it (or has no irqfds), a level
        boolean shared = all.contains("(level line");
        assertTrue(state.contains("ioapic pin 5: vector " + (0x20 + 5) + (shared ? " level mode 0 physical 0"
                : " edge mode 0 physical 0 irqfd")), all);
    }

    /**
     * krun_add_virtio_console_default's device: a second virtio-console (the guest's hvc1) on a pseudo-terminal the
     * caller owns, beside the implicit one. A terminal gives a single console port, so the console guest, told to use
     * the second device, writes to and reads from the pty, and nothing reaches hvc0.
     */
    @Test
    void aSecondConsoleDeviceOnATerminal() throws Exception {
        ByteArrayOutputStream hvc0 = new ByteArrayOutputStream();
        GuestRun r = converseOnPty(1, (c, tty) -> c.streams(InputStream.nullInputStream(), hvc0).virtioConsole(tty, tty, tty));
        assertTrue(r.output().contains("VIRTIO 0xd0001000"), "the second device: " + r.output());
        assertEquals("", hvc0.toString(StandardCharsets.US_ASCII), "the implicit console stays quiet");
    }

    /**
     * krun_add_virtio_console_multiport's device with an unnamed terminal port (krun_add_console_port_tty with ""):
     * a device of its own whose port 0 is the pty.
     */
    @Test
    void aMultiportDeviceWithAnUnnamedTerminalPort() throws Exception {
        GuestRun r = converseOnPty(1, (c, tty) -> c.streams(InputStream.nullInputStream(), new ByteArrayOutputStream())
                .multiport(new ConsolePortConfig.Fds("", tty, tty, true)));
        assertTrue(r.output().contains("VIRTIO 0xd0001000"), "the second device: " + r.output());
    }

    /** The implicit console on descriptors the caller gives (ConsoleBuilder.fds): hvc0 on a pseudo-terminal. */
    @Test
    void theImplicitConsoleOnCallerDescriptors() throws Exception {
        GuestRun r = converseOnPty(0, (c, tty) -> c.fds(tty, tty, tty));
        assertTrue(r.output().contains("VIRTIO 0xd0000000"), "the implicit device: " + r.output());
    }

    /**
     * Runs the console guest on its {@code device}-th virtio device with the consoles {@code consoles} sets up on a
     * new pty's slave; answers "hello from guest" with "ping" on the master and checks both directions.
     */
    private static GuestRun converseOnPty(int device, java.util.function.BiConsumer<VmBuilder.ConsoleBuilder, Integer> consoles)
            throws Exception {
        ByteArrayOutputStream tty = new ByteArrayOutputStream();
        try (Terminal.Pty pty = Terminal.openPty()) {
            int slave = pty.slave().raw(), master = pty.master().raw();
            VmConfig config = VmBuilder.create()
                    .machine(m -> m.memoryMib(64))
                    .kernel(k -> k.kernelPath(TestGuests.path("console"))
                            .replaceCmdline("jkrun.test.timeout_ms=" + TIMEOUT_MS + " jkrun.console.device=" + device))
                    .console(c -> consoles.accept(c, slave))
                    .rng(false)
                    .balloon(false)
                    .build()
                    .withTestExitPort(true);
            Thread host = new Thread(() -> {
                byte[] buf = new byte[256];
                boolean answered = false;
                try {
                    int n;
                    while ((n = Poll.read(master, buf, 0, buf.length)) > 0) {
                        synchronized (tty) {
                            tty.write(buf, 0, n);
                        }
                        if (!answered && text(tty).contains("hello from guest\n")) {
                            answered = true;
                            byte[] ping = "ping\n".getBytes(StandardCharsets.US_ASCII);
                            Poll.write(master, ping, 0, ping.length);
                        }
                    }
                } catch (RuntimeException e) {
                    // EIO once the slave is closed: the conversation is over
                }
            }, "pty-host");
            host.setDaemon(true);
            host.start();
            GuestRun r = GuestRun.run(config, Duration.ofSeconds(60));
            long until = System.nanoTime() + 5_000_000_000L;
            while (!text(tty).contains("PING\n") && System.nanoTime() < until) {
                Thread.sleep(20);
            }
            assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.output() + r.reason());
            assertTrue(r.output().contains("RX ping"), r.output());
            assertEquals("hello from guest\nPING\n", text(tty), "both directions through the pty");
            return r;
        }
    }

    private static String text(ByteArrayOutputStream b) {
        synchronized (b) {
            return b.toString(StandardCharsets.US_ASCII);
        }
    }

    @Test
    void outputToFile(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("console.log");
        GuestRun r = GuestRun.run(config(new ConsoleConfig.ToFile(file)).withTestExitPort(true), Duration.ofSeconds(60));
        // No input ever arrives: the guest times out waiting for rx after its tx went through.
        assertTrue(r.output().contains("OK tx"), r.output());
        assertEquals("hello from guest\n", Files.readString(file));
    }

    @Test
    void aResetAfterAKernelPanicLineIsACrashWithThePanicMessage() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        VmConfig c = new VmConfig(MachineConfig.of(1, 64), KernelConfig.elf(TestGuests.path("console"), "jkrun.test.panic"),
                new ConsoleConfig.Streams(new ByteArrayInputStream(new byte[0]), out), false);
        GuestRun r = GuestRun.run(c, Duration.ofSeconds(60));
        assertEquals(StopReason.Kind.CRASH, r.reason().kind(), r.reason() + r.output());
        assertEquals("kernel panic: jkrun test panic", r.reason().detail());
        assertTrue(out.toString(StandardCharsets.US_ASCII).contains("Kernel panic - not syncing: jkrun test panic"));
    }

    @Test
    void aResetWithoutAPanicIsAReboot() throws Exception {
        VmConfig c = new VmConfig(MachineConfig.of(1, 64), KernelConfig.elf(TestGuests.path("console"), "jkrun.test.reset"),
                new ConsoleConfig.Streams(new ByteArrayInputStream(new byte[0]), new ByteArrayOutputStream()), false);
        GuestRun r = GuestRun.run(c, Duration.ofSeconds(60));
        assertEquals(StopReason.Kind.REBOOT, r.reason().kind(), r.reason() + r.output());
    }
}
