package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.guests.TestGuests;
import dev.jkrun.kvm.testing.KvmAvailable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A hostile guest against the VMM, on real KVM through the normal build path: the hostile test guest attacks a
 * virtio-blk disk (the victim) and the console from inside the VM (rings and buffers outside RAM, looping and
 * terabyte chains, a control-message flood, resets with requests in flight, junk at every MMIO offset) and checks
 * after every attack that a second disk (the bystander) still reads right and the attacked device works again
 * after a reset. See guests/src/hostile.c.
 *
 * <p>Each case runs in its own JVM ({@link Child}), so that a VMM that crashes (SIGSEGV in host memory), runs out of
 * heap or leaves device threads behind fails that case with the evidence instead of taking the test JVM down. The
 * child's slf4j output (device loggers at debug where they log refusals) comes back for the refusal checks.
 * Per case: the guest's report is ok and the VM stopped with its exit status 0 within the limit; both disk images
 * are byte-for-byte unchanged (no attack may write the image, none may leak host memory into it); the console's
 * output stayed bounded and it still works; no device thread outlived the VM; the JVM exited normally; the VMM
 * logged the refusal.
 */
class HostileGuestTest {
    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    static final String VICTIM = "hostile-victim", BYSTANDER = "hostile-bystander", BIG = "hostile-big";
    static final int VICTIM_SEED = 0x5A, BYSTANDER_SEED = 0x3C;
    static final long VICTIM_BYTES = 8L << 20, BYSTANDER_BYTES = 1L << 20;
    /** chain_terabytes' third disk: sparse and read-only, big enough that a 1 TiB IN is inside it. */
    static final long BIG_BYTES = 2L << 40;
    /** A device may bound a chain at 2^32 bytes; more console output than that means it copied a huge chain. */
    static final long CONSOLE_LIMIT = (1L << 32) + (1L << 20);
    static final Duration VM_LIMIT = Duration.ofSeconds(150);

    /**
     * What a case needs and what the VMM must have logged. {@code refusal}: a pattern one line of the child's log
     * must match (null: the case attacks nothing the VMM should refuse, a reset is legal; or the device absorbs the
     * attack without refusing anything, as the console coalesces repeated control requests — the guest then checks
     * that what it got back stayed bounded).
     */
    record Expect(boolean console, boolean bigDisk, Pattern refusal) {}

    static final Map<String, Expect> CASES = Map.of(
            "rings_outside_ram", new Expect(false, false, Pattern.compile("(DESC_TABLE|AVAIL_RING|USED_RING)_OUT_OF_MEMORY")),
            "buffers_outside_ram", new Expect(false, false,
                    Pattern.compile("BUFFER_OUT_OF_MEMORY|BUFFER_ADDRESS_OVERFLOW|INDIRECT_TABLE_OUT_OF_MEMORY")),
            "chain_loops", new Expect(false, false, Pattern.compile("(?i)CHAIN_TOO_LONG|loop|DESCRIPTOR_INDEX_OUT_OF_RANGE")),
            "chain_terabytes", new Expect(false, true, Pattern.compile("CHAIN_TOO_MANY_BYTES")),
            "mmio_hammer", new Expect(false, false, Pattern.compile("(?i)virtio-mmio.*ignor")),
            "queue_regs_oob", new Expect(false, false, Pattern.compile("(?i)nonexistent queue|INVALID_QUEUE_SIZE")),
            "reset_inflight", new Expect(true, false, null),
            "console_ctrl_flood", new Expect(true, false, null),
            "console_tx_terabytes", new Expect(true, false, Pattern.compile("CHAIN_TOO_MANY_BYTES")),
            "reset_long_chain", new Expect(true, false, null));

    /** Lines in the child's log that mean the VMM was hurt, whatever the case. */
    static final Pattern HURT = Pattern.compile("Exception in thread|OutOfMemoryError|did not stop|"
            + "A fatal error has been detected|JVM crash report|SIGSEGV|StackOverflowError");

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"rings_outside_ram", "buffers_outside_ram", "chain_loops", "chain_terabytes", "mmio_hammer",
            "queue_regs_oob", "reset_inflight", "console_ctrl_flood", "console_tx_terabytes", "reset_long_chain"})
    void theVmmSurvives(String name) throws Exception {
        String only = System.getProperty("jkrun.hostile.only");
        Assumptions.assumeTrue(only == null || List.of(only.split(",")).contains(name), "not in -Djkrun.hostile.only");
        Expect expect = CASES.get(name);
        Path victim = dir.resolve("victim.raw");
        Path bystander = dir.resolve("bystander.raw");
        Files.write(victim, VirtioBlockGuestTest.patternImage(VICTIM_SEED, VICTIM_BYTES));
        Files.write(bystander, VirtioBlockGuestTest.patternImage(BYSTANDER_SEED, BYSTANDER_BYTES));
        String victimHash = sha256(victim), bystanderHash = sha256(bystander);
        Path big = null;
        if (expect.bigDisk()) {
            big = dir.resolve("big.raw");
            try (RandomAccessFile f = new RandomAccessFile(big.toFile(), "rw")) {
                f.setLength(BIG_BYTES);
            }
            big.toFile().setWritable(false);
        }

        Result r = runChild(name, victim, bystander, big);
        System.out.println(name + ": " + r.summary());
        List<Executable> checks = new ArrayList<>();
        checks.add(() -> assertEquals(0, r.exitCode(), "the child JVM must exit normally (a VMM crash kills it)"));
        checks.add(() -> assertEquals("SHUTDOWN 0", r.stop(), "the VM stops with the guest's exit status"));
        checks.add(() -> assertTrue(r.guestLines().contains("HOSTILE ok 1")
                && r.guestLines().stream().anyMatch(l -> l.startsWith("CASE " + name + " ok ")), "the guest's report"));
        checks.add(() -> assertEquals(List.of(), r.guestLines().stream().filter(l -> l.contains("FAIL")).toList(),
                "failed checks in the guest"));
        checks.add(() -> assertEquals(victimHash, sha256(victim), "the victim image must not change"));
        checks.add(() -> assertEquals(bystanderHash, sha256(bystander), "the bystander image must not change"));
        if (big != null) {
            Path b = big;
            checks.add(() -> assertEquals(BIG_BYTES, Files.size(b), "the big image keeps its size"));
        }
        checks.add(() -> assertTrue(r.consoleBytes() <= CONSOLE_LIMIT, "console output must stay bounded: "
                + r.consoleBytes() + " bytes"));
        if (expect.console()) {
            checks.add(() -> assertTrue(r.consoleLines().contains("HOSTILE " + name + " console alive"),
                    "the console works after the attack: " + r.consoleLines()));
        }
        checks.add(() -> assertEquals(List.of(), r.lingering(), "device threads must end with the VM"));
        checks.add(() -> assertEquals(List.of(), r.log().lines().filter(l -> HURT.matcher(l).find()).limit(20).toList(),
                "the VMM's log shows it was hurt"));
        if (expect.refusal() != null) {
            checks.add(() -> assertTrue(r.log().lines().anyMatch(l -> expect.refusal().matcher(l).find()),
                    "the VMM logs what it refused (" + expect.refusal() + ")"));
        }
        assertAll(name + ": " + r, checks);
    }

    // ---- the child JVM ---------------------------------------------------------------------------------------------

    /** What the child reported: its exit code, the stop reason, the guest's lines, the console, the log. */
    record Result(int exitCode, String stop, List<String> guestLines, long consoleBytes, List<String> consoleLines,
                  List<String> lingering, String log, long millis) {
        String summary() {
            return "child exit " + exitCode + " after " + millis + " ms, stop " + stop + ", console " + consoleBytes
                    + " bytes, lingering " + lingering + "\n" + String.join("\n", guestLines);
        }

        @Override
        public String toString() {
            String logTail = log.length() > 8000 ? "...\n" + log.substring(log.length() - 8000) : log;
            return "child exit " + exitCode + " after " + millis + " ms, stop " + stop + ", console " + consoleBytes
                    + " bytes, lingering " + lingering + "\n--- guest\n" + String.join("\n", guestLines)
                    + "\n--- log (tail)\n" + logTail;
        }
    }

    private Result runChild(String name, Path victim, Path bystander, Path big) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx512m", "-XX:+UseSerialGC", "-XX:ErrorFile=" + dir.resolve("hs_err_%p.log"),
                "-Dorg.slf4j.simpleLogger.showDateTime=false",
                // refusals of single chains are logged at debug
                "-Dorg.slf4j.simpleLogger.log.dev.jkrun.devices.virtio.QueueWorker=debug",
                "-Dorg.slf4j.simpleLogger.log.dev.jkrun.devices.virtio.block.VirtioBlock=debug",
                "-cp", System.getProperty("java.class.path"), Child.class.getName(),
                name, victim.toString(), bystander.toString(), big == null ? "-" : big.toString()));
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder(cmd).start();
        p.getOutputStream().close();
        CompletableFuture<String> out = CompletableFuture.supplyAsync(read(p.getInputStream()));
        CompletableFuture<String> err = CompletableFuture.supplyAsync(read(p.getErrorStream()));
        if (!p.waitFor(VM_LIMIT.toSeconds() + 60, TimeUnit.SECONDS)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
            fail("the child JVM hung (the VMM did not even stop after " + VM_LIMIT + "); stdout so far:\n"
                    + out.getNow("?") + "\n--- log\n" + tail(err.getNow("?")));
        }
        long ms = (System.nanoTime() - t0) / 1_000_000;
        String stdout = out.get(10, TimeUnit.SECONDS), log = err.get(10, TimeUnit.SECONDS);
        String stop = "none";
        long consoleBytes = 0;
        List<String> guest = new ArrayList<>(), console = new ArrayList<>(), lingering = new ArrayList<>();
        boolean inGuest = false;
        for (String l : stdout.lines().toList()) {
            if (l.equals(Child.GUEST_END)) {
                inGuest = false;
            } else if (inGuest) {
                guest.add(l);
            } else if (l.equals(Child.GUEST_BEGIN)) {
                inGuest = true;
            } else if (l.startsWith("CHILD stop ")) {
                stop = l.substring("CHILD stop ".length());
            } else if (l.startsWith("CHILD console_bytes ")) {
                consoleBytes = Long.parseLong(l.substring("CHILD console_bytes ".length()));
            } else if (l.startsWith("CHILD console_line ")) {
                console.add(l.substring("CHILD console_line ".length()));
            } else if (l.startsWith("CHILD lingering ")) {
                lingering.add(l.substring("CHILD lingering ".length()));
            } else if (!l.isBlank()) {
                log = l + "\n" + log; // a JVM's own crash report goes to stdout
            }
        }
        try (var crashes = Files.newDirectoryStream(dir, "hs_err_*.log")) {
            for (Path c : crashes) {
                log = "JVM crash report " + c.getFileName() + ":\n" + Files.readString(c).lines().limit(40)
                        .collect(Collectors.joining("\n")) + "\n" + log;
            }
        }
        return new Result(p.exitValue(), stop, guest, consoleBytes, console, lingering, log, ms);
    }

    private static Supplier<String> read(InputStream in) {
        return () -> {
            try {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                return "<" + e + ">";
            }
        };
    }

    private static String tail(String s) { return s.length() > 8000 ? "...\n" + s.substring(s.length() - 8000) : s; }

    private static String sha256(Path p) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
    }

    /**
     * Runs one case: {@code Child <case> <victim.raw> <bystander.raw> <big.raw|->}. Prints its findings on stdout as
     * {@code CHILD ...} lines and the guest's output between {@link #GUEST_BEGIN} and {@link #GUEST_END}; the log goes
     * to stderr. Exits 0 once the VM is closed, whatever the guest did.
     */
    static final class Child {
        static final String GUEST_BEGIN = "CHILD guest-begin", GUEST_END = "CHILD guest-end";

        public static void main(String[] args) throws Exception {
            PrintStream out = System.out;
            String name = args[0];
            List<DiskConfig> disks = new ArrayList<>(List.of(
                    DiskConfig.of(VICTIM, Path.of(args[1]), false, ImageFormat.RAW),
                    DiskConfig.of(BYSTANDER, Path.of(args[2]), false, ImageFormat.RAW)));
            if (!args[3].equals("-")) {
                disks.add(DiskConfig.of(BIG, Path.of(args[3]), true, ImageFormat.RAW));
            }
            ConsoleCapture console = new ConsoleCapture();
            String cmdline = "jkrun.test.timeout_ms=5000 jkrun.hostile.case=" + name + " jkrun.hostile.victim_seed="
                    + VICTIM_SEED + " jkrun.hostile.bystander_seed=" + BYSTANDER_SEED;
            VmConfig config = new VmConfig(MachineConfig.of(1, 64), KernelConfig.elf(TestGuests.path("hostile"), cmdline),
                    new ConsoleConfig.Streams(InputStream.nullInputStream(), console), List.of(), disks, Optional.empty(), true);
            String guest;
            try (VirtualMachine vm = VirtualMachine.create(config, System.err, null)) {
                vm.start();
                Optional<StopReason> r = vm.waitForStop(VM_LIMIT);
                if (r.isEmpty()) {
                    out.println("CHILD stop none (still running after " + VM_LIMIT + ")");
                    vm.vcpuState().forEach(s -> out.println("CHILD vcpu " + s));
                } else {
                    out.println("CHILD stop " + r.get().kind() + " " + r.get().exitStatus().stream()
                            .mapToObj(String::valueOf).collect(Collectors.joining()) + (r.get().exitStatus().isPresent()
                            ? "" : r.get().detail()));
                }
                guest = vm.debugOutput();
            }
            out.println(GUEST_BEGIN);
            out.print(guest.endsWith("\n") || guest.isEmpty() ? guest : guest + "\n");
            out.println(GUEST_END);
            out.println("CHILD console_bytes " + console.bytes);
            console.lines.forEach(l -> out.println("CHILD console_line " + l));
            long deadline = System.nanoTime() + 3_000_000_000L;
            List<Thread> left;
            do {
                left = Thread.getAllStackTraces().keySet().stream().filter(t -> t.isAlive() && t.getName().startsWith("virtio-")).toList();
                if (!left.isEmpty()) {
                    Thread.sleep(100);
                }
            } while (!left.isEmpty() && System.nanoTime() < deadline);
            left.forEach(t -> out.println("CHILD lingering " + t.getName()));
            out.flush();
            System.exit(0);
        }
    }

    /** hvc0's output: counted, and the lines the guest marks with "HOSTILE " kept. */
    static final class ConsoleCapture extends OutputStream {
        volatile long bytes;
        final List<String> lines = new java.util.concurrent.CopyOnWriteArrayList<>();
        private final StringBuilder line = new StringBuilder();

        @Override
        public synchronized void write(int b) {
            write(new byte[] {(byte) b}, 0, 1);
        }

        /** Keeps the end of the current line: a marked line may follow megabytes of a chain's bytes without '\n'. */
        @Override
        public synchronized void write(byte[] b, int off, int len) {
            bytes += len;
            for (int i = off; i < off + len; i++) {
                if (b[i] == '\n') {
                    int at = line.lastIndexOf("HOSTILE ");
                    if (at >= 0 && lines.size() < 100) {
                        lines.add(line.substring(at));
                    }
                    line.setLength(0);
                } else {
                    if (line.length() >= 400) {
                        line.delete(0, 200);
                    }
                    line.append((char) (b[i] & 0xFF));
                }
            }
        }
    }
}
