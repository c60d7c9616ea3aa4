package dev.jkrun.krun;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import jnr.ffi.TypeAlias;
import jnr.ffi.byref.NumberByReference;
import jnr.ffi.byref.PointerByReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The "swap the library load" half of the contract: the same {@link LibKrun} interface binds a native library
 * through JNR-FFI, and its Java types reach C as include/libkrun.h's types.
 */
class LibKrunNativeBindingTest {
    @TempDir
    Path tmp;

    @Test
    void jnrAcceptsEverySignatureOfTheInterface() {
        // libc has none of the symbols: JNR still generates the whole implementation (each method fails when called),
        // which it could not if a parameter type had no C mapping.
        LibKrun lib = LibraryLoader.create(LibKrun.class).load("c");
        assertNotNull(lib);
        assertThrows(UnsatisfiedLinkError.class, lib::krun_create_ctx);
    }

    @Test
    void javaArgumentsReachCAsTheHeadersTypes() throws Exception {
        Path so = buildStub();
        LibKrun krun = LibraryLoader.create(LibKrun.class).search(tmp.toString()).load("krun");
        assertEquals(7, krun.krun_create_ctx());
        assertEquals(1, krun.krun_free_ctx((int) 4_000_000_000L), "uint32_t ctx ids above 2^31");
        assertEquals(200 * 100000 + 3000, krun.krun_set_vm_config(0, 200, 3000), "uint8_t vCPUs above 127");
        assertEquals(44 * 100000 + 1, krun.krun_set_vm_config(0, 300, 1), "uint8_t truncates as C does");
        assertEquals(7 * 10000 + 3 * 100 + 2, krun.krun_set_exec(0, "/bin/sh", new String[] {"-c", "true"}, new String[] {"A=1"}),
                "NULL-terminated string arrays");
        assertEquals(7 * 10000 + 0 + 0, krun.krun_set_exec(0, "/bin/sh", null, null), "a null array is a NULL pointer");
        assertEquals(7 * 10000 + 100 + 1, krun.krun_set_exec(0, "/bin/sh", new String[0], new String[0]), "an empty array is {NULL}");
        assertEquals(2 * 1000 + 100 + 0 + 1, krun.krun_add_disk3(0, "vda", "/x", 2, true, false, 1), "bool and uint32_t");
        assertEquals(5, krun.krun_has_feature(5L << 40), "uint64_t");
        assertEquals(0xFF * 6, krun.krun_set_net_mac(0, new byte[] {-1, -1, -1, -1, -1, -1}), "uint8_t array");
        assertEquals(60000, krun.krun_display_set_physical_size(0, 0, 60000, 1), "uint16_t above 32767");
        assertEquals(256 + 512, krun.krun_add_vhost_user_device(0, 4, "/s", "n", 2, new short[] {256, 512}), "uint16_t array");
        assertEquals(1000000, krun.krun_add_vhost_user_device(0, 4, "/s", null, 0, null), "NULL pointers");
        assertEquals(-2, krun.krun_setuid(0, -2), "uid_t");
        assertEquals(250, krun.krun_set_tsi_scope(0, "10.0.0.2", "10.0.0.0/8", 250), "uint8_t");
        assertEquals(-1, krun.krun_init_log(-1, 0, 0, 0), "int keeps its sign");
        assertEquals(3, krun.krun_set_gpu_options2(0, 0, 3L << 33), "uint64_t");

        Runtime rt = Runtime.getRuntime(krun);
        Pointer data = Memory.allocateDirect(rt, 3);
        data.put(0, new byte[] {1, 2, 99}, 0, 3);
        assertEquals(99 + 0644 + 10000, krun.krun_fs_add_overlay_file(0, "/dev/root", "etc/x", data, 3, 0644, true),
                "memory the callee keeps goes as a Pointer");

        PointerByReference out = new PointerByReference();
        NumberByReference len = new NumberByReference(TypeAlias.size_t);
        assertEquals(0, krun.krun_get_default_init(out, len));
        assertEquals(5, len.intValue());
        byte[] got = new byte[5];
        out.getValue().get(0, got, 0, 5);
        assertArrayEquals("hello".getBytes(), got, "out-pointers");
        assertNotNull(so);
    }

    private Path buildStub() throws IOException, InterruptedException {
        Path src = tmp.resolve("krun_stub.c");
        try (InputStream in = getClass().getResourceAsStream("/krun_stub.c")) {
            Files.copy(in, src);
        }
        Path so = tmp.resolve("libkrun.so");
        Process p;
        try {
            p = new ProcessBuilder("cc", "-shared", "-fPIC", "-O1", "-o", so.toString(), src.toString())
                    .redirectErrorStream(true).start();
        } catch (IOException e) {
            assumeTrue(false, "no C compiler to build the libkrun stub: " + e.getMessage());
            throw e;
        }
        String output = new String(p.getInputStream().readAllBytes());
        assumeTrue(p.waitFor(60, TimeUnit.SECONDS), "cc took too long");
        assertEquals(0, p.exitValue(), output);
        return so;
    }
}
