package dev.jkrun.init;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InitConfigTest {

    private static String text(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    @Test
    void encodesRecordsInOrder() {
        InitConfig c = InitConfig.builder("/bin/sh").arg("-c").arg("échо $A").env("A", "1=2").workdir("/w")
                .hostname("h").rlimit("RLIMIT_NOFILE=10:unlimited").mount("data", "/mnt/data")
                .rootDisk(new RootDisk("/dev/vda", "ext4", "discard")).tty(true).stdioPorts(true).build();
        assertEquals("jkrun-init\0" + "1\0" + "exec\0/bin/sh\0" + "arg\0-c\0" + "arg\0échо $A\0" + "env\0A=1=2\0"
                + "workdir\0/w\0" + "hostname\0h\0" + "rlimit\0NOFILE=10:unlimited\0" + "mount\0data:/mnt/data\0"
                + "root-disk\0/dev/vda:ext4:discard\0" + "tty\0" + "1\0" + "stdio\0ports\0", text(c.encode()));
    }

    @Test
    void minimalConfig() {
        assertArrayEquals("jkrun-init\0001\0exec\0true\0tty\0000\0stdio\0console\0".getBytes(StandardCharsets.UTF_8),
                InitConfig.builder("true").build().encode());
    }

    @Test
    void emptyArgumentsSurvive() {
        assertEquals("jkrun-init\0001\0exec\0x\0arg\0\0arg\0\0tty\0000\0stdio\0console\0",
                text(InitConfig.builder("x").arg("").arg("").build().encode()));
    }

    private static void rejects(String field, String fragment, Runnable r) {
        InvalidInitConfigException e = assertThrows(InvalidInitConfigException.class, r::run);
        assertEquals(field, e.field());
        assertTrue(e.getMessage().startsWith(field + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(fragment), e.getMessage());
    }

    @Test
    void validation() {
        rejects("rlimit", "above the hard limit", () -> RLimit.parse("NOFILE=10:5"));
        rejects("rlimit", "above the hard limit", () -> RLimit.parse("NOFILE=unlimited:5"));
        rejects("rlimit", "unknown resource 'FILES'", () -> RLimit.parse("FILES=1:2"));
        rejects("rlimit", "expected NAME=SOFT:HARD", () -> RLimit.parse("NOFILE=1"));
        rejects("rlimit", "decimal number", () -> RLimit.parse("NOFILE=1:lots"));
        rejects("env", "NAME=VALUE", () -> InitConfig.builder("x").env("NOEQUALS").build());
        rejects("env", "NAME=VALUE", () -> InitConfig.builder("x").env("=v").build());
        rejects("exec", "no program", () -> InitConfig.builder("").build());
        rejects("arg", "NUL", () -> InitConfig.builder("x").arg("a\0b").build());
        rejects("workdir", "not absolute", () -> InitConfig.builder("x").workdir("tmp").build());
        rejects("hostname", "64 bytes", () -> InitConfig.builder("x").hostname("h".repeat(65)).build());
        rejects("mount", "':'", () -> InitConfig.builder("x").mount("a:b", "/m"));
        rejects("mount", "36 bytes", () -> InitConfig.builder("x").mount("t".repeat(37), "/m"));
        rejects("mount", "absolute", () -> InitConfig.builder("x").mount("t", "m"));
        rejects("root-disk", "device", () -> new RootDisk("", "ext4", ""));
    }

    @Test
    void rlimitNames() {
        assertEquals(new RLimit(RLimit.Resource.NOFILE, 1, 2), RLimit.parse("nofile=1:2"));
        assertEquals(new RLimit(RLimit.Resource.NOFILE, 1, 2), RLimit.parse("7:1:2"));
        assertEquals(new RLimit(RLimit.Resource.RTTIME, RLimit.UNLIMITED, RLimit.UNLIMITED),
                RLimit.parse("RLIMIT_RTTIME=unlimited:unlimited"));
        assertEquals(7, RLimit.Resource.NOFILE.id());
        assertEquals(15, RLimit.Resource.RTTIME.id());
    }

    @Test
    void binaryIsAStaticElf(@TempDir Path dir) throws Exception {
        byte[] b = GuestInit.binary();
        assertArrayEquals(new byte[] {0x7f, 'E', 'L', 'F'}, java.util.Arrays.copyOf(b, 4));
        assertTrue(GuestInitHarness.isStaticElf(Files.write(dir.resolve("init.krun"), b)), "has a PT_INTERP");
    }
}
