package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.kvm.testing.KvmAvailable;
import dev.jkrun.libc.FileDescriptor;
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * A serial console (a 16550A on COM1) through real KVM, on two FIFOs as krun_add_serial_console_default's caller
 * would pass: the serial guest probes the UART as Linux's 8250 autoconfig does, loops bytes back (which must not reach
 * the host), programs divisor, LCR and FCR, checks THRE's reassertion, then takes a line and a 2000-byte flood from the
 * host through the 16-byte FIFO on IRQ 4 interrupts and answers with a 3000-byte line sent 16 bytes per THRE
 * interrupt, then with 80000 bytes while this test stops reading for a while (more than the FIFO's pipe and the UART's
 * 4 KiB buffer hold: LSR.THRE must hold the guest back, and nothing may be lost). Its report lines come through the same UART, so this test reads everything from the output FIFO; the
 * debug port is not at 0x3F8 then.
 */
class SerialGuestTest {
    private static final List<String> CHECKS = List.of("probe", "loopback", "divisor", "thre_reassert", "rx_line",
            "rx_flood", "tx_burst", "tx_flood");
    /** TX_FLOOD is more than the output FIFO's pipe (64 KiB) and the UART's transmit buffer (4 KiB) hold. */
    private static final int FLOOD = 2000, TX_LEN = 3000, TX_FLOOD = 80_000;
    private static final long PAUSE_MS = 1500;

    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    @Test
    void theGuestTalksBothWaysThroughTheUart(@TempDir Path dir) throws Exception {
        GuestRun.warmUp();
        Path in = dir.resolve("in"), out = dir.resolve("out");
        mkfifo(in);
        mkfifo(out);
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        StopReason reason;
        String debug;
        int ours, oursAfter;
        Thread reader;
        // O_RDWR: opening a FIFO that way never waits for the other end; the streams then find one open
        FileDescriptor inFd = FileDescriptor.open(in.toString(), FileDescriptor.O_RDWR | FileDescriptor.O_CLOEXEC);
        FileDescriptor outFd = FileDescriptor.open(out.toString(), FileDescriptor.O_RDWR | FileDescriptor.O_CLOEXEC);
        try (OutputStream host = new FileOutputStream(in.toFile());
             InputStream guest = new FileInputStream(out.toFile())) {
            reader = new Thread(() -> converse(guest, host, got), "serial-test-reader");
            reader.setDaemon(true);
            reader.start();
            VmConfig config = VmBuilder.create()
                    .machine(m -> m.memoryMib(64))
                    .kernel(k -> k.kernelPath(TestGuests.path("serial"))
                            .replaceCmdline("jkrun.test.timeout_ms=20000 jkrun.serial.flood=" + FLOOD
                                    + " jkrun.serial.txflood=" + TX_FLOOD))
                    .console(c -> c.disableImplicit().serial(inFd.raw(), outFd.raw()))
                    .rng(false)
                    .balloon(false)
                    .build()
                    .withTestExitPort(true);
            ours = FileDescriptor.openCount();
            try (VirtualMachine vm = VirtualMachine.create(config, System.err, null)) {
                vm.start();
                reason = vm.waitForStop(Duration.ofSeconds(120)).orElseThrow(() -> new AssertionError(
                        "guest did not stop: " + output(got)));
                debug = vm.debugOutput();
            }
            oursAfter = FileDescriptor.openCount();
            // what the UART's loop wrote before the stop is in the FIFO: let the reader take it
            long until = System.nanoTime() + 5_000_000_000L;
            while (!output(got).contains("SERIAL ") && System.nanoTime() < until) {
                Thread.sleep(20);
            }
            outFd.close(); // the last writer: the reader sees the end
            reader.join(5000);
        } finally {
            outFd.close();
            inFd.close();
        }
        String text = output(got);
        System.out.println(text.lines().map(l -> l.length() > 200 ? l.substring(0, 200) + "... (" + l.length() + ")" : l)
                .collect(java.util.stream.Collectors.joining("\n")));
        List<String> lines = text.lines().toList();
        String burst = "TXBURST " + letters();
        List<Executable> checks = new ArrayList<>();
        checks.add(() -> assertEquals(OptionalInt.of(0), reason.exitStatus(), text + reason));
        for (String c : CHECKS) {
            checks.add(() -> assertTrue(lines.contains("CHECK " + c + " ok"), "CHECK " + c + ": " + text));
        }
        checks.add(() -> assertTrue(lines.contains("RX hello serial"), "the host's line reached the guest"));
        checks.add(() -> assertTrue(lines.contains(burst), "the interrupt-driven line arrived whole"));
        checks.add(() -> assertTrue(lines.contains(txFlood()), "the flood written while the host paused arrived whole"));
        checks.add(() -> assertFalse(text.contains("LOOPBACK-SECRET"), "loopback bytes never leave the UART"));
        checks.add(() -> assertTrue(lines.contains("SERIAL ok " + CHECKS.size()), "the guest's summary: " + text));
        checks.add(() -> assertEquals("", debug, "no debug port behind a UART on COM1"));
        checks.add(() -> assertEquals(ours, oursAfter, "jkrun's descriptors (the UART's watched duplicates) closed with the VM"));
        assertAll(checks);
    }

    private static String letters() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < TX_LEN; i++) {
            sb.append((char) ('a' + i % 26));
        }
        return sb.toString();
    }

    private static String txFlood() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < TX_FLOOD; i++) {
            sb.append((char) ('A' + i * 7 % 26));
        }
        return sb.toString();
    }

    private static String output(ByteArrayOutputStream got) {
        synchronized (got) {
            return got.toString(StandardCharsets.ISO_8859_1);
        }
    }

    /** Collects the guest's output and answers its prompts: a line after READY, the flood after FLOOD. */
    private static void converse(InputStream guest, OutputStream host, ByteArrayOutputStream got) {
        StringBuilder line = new StringBuilder();
        byte[] buf = new byte[4096];
        try {
            int n;
            while ((n = guest.read(buf)) > 0) {
                synchronized (got) {
                    got.write(buf, 0, n);
                }
                for (int i = 0; i < n; i++) {
                    char c = (char) (buf[i] & 0xFF);
                    if (c != '\n') {
                        if (line.length() < 64) {
                            line.append(c);
                        }
                        continue;
                    }
                    String l = line.toString();
                    line.setLength(0);
                    if (l.equals("READY")) {
                        host.write("hello serial\n".getBytes(StandardCharsets.US_ASCII));
                        host.flush();
                    } else if (l.equals("FLOOD " + FLOOD)) {
                        byte[] flood = new byte[FLOOD];
                        for (int k = 0; k < FLOOD; k++) {
                            flood[k] = (byte) (k * 7 + 3);
                        }
                        host.write(flood);
                        host.flush();
                    } else if (l.equals("TXFLOOD " + TX_FLOOD)) {
                        Thread.sleep(PAUSE_MS); // a host that stops reading: the pipe and the UART's buffer fill up
                    }
                }
            }
        } catch (IOException e) {
            // the descriptors closed: the conversation is over
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void mkfifo(Path p) throws IOException, InterruptedException {
        Process proc = new ProcessBuilder("mkfifo", p.toString()).inheritIO().start();
        assertEquals(0, proc.waitFor(), "mkfifo " + p);
        assertTrue(Files.exists(p));
    }
}
