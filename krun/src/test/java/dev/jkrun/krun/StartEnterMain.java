package dev.jkrun.krun;

import static dev.jkrun.krun.KrunConstants.KRUN_KERNEL_FORMAT_ELF;

/**
 * A program written against the C API, as a libkrun user would write it: it touches the VM only through
 * {@link LibKrun}. Run in a child JVM by {@link LibKrunStartEnterTest}.
 *
 * <p>Arguments: {@code KERNEL CMDLINE [eventfd|setuid]}. It prints {@code ENTER} before krun_start_enter and
 * {@code RETURNED <rc>} if that ever returns (then exits 99). With {@code eventfd} it writes 1 to the shutdown
 * eventfd one second after entering; with {@code setuid} it asks for uid and gid 65534.
 */
public final class StartEnterMain {
    private StartEnterMain() {}

    public static void main(String[] args) throws Exception {
        LibKrun krun = Jkrun.libkrun();
        int ctx = krun.krun_create_ctx();
        check("krun_create_ctx", ctx >= 0 ? 0 : ctx);
        check("krun_set_vm_config", krun.krun_set_vm_config(ctx, 1, 64));
        check("krun_set_kernel", krun.krun_set_kernel(ctx, args[0], KRUN_KERNEL_FORMAT_ELF, null, args[1]));
        if (args.length > 2 && args[2].equals("eventfd")) {
            int fd = krun.krun_get_shutdown_eventfd(ctx);
            check("krun_get_shutdown_eventfd", fd >= 0 ? 0 : fd);
            Thread t = new Thread(() -> {
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException e) {
                    return;
                }
                TestLibC.writeU64(fd, 1);
            });
            t.setDaemon(true);
            t.start();
        }
        if (args.length > 2 && args[2].equals("setuid")) {
            check("krun_setgid", krun.krun_setgid(ctx, 65534));
            check("krun_setuid", krun.krun_setuid(ctx, 65534));
        }
        System.out.println("ENTER");
        System.out.flush();
        int rc = krun.krun_start_enter(ctx);
        System.out.println("RETURNED " + rc);
        System.out.flush();
        System.exit(99);
    }

    private static void check(String what, int rc) {
        if (rc != 0) {
            System.out.println(what + " failed: " + rc);
            System.exit(98);
        }
    }
}
