/**
 * The guest init, {@code /init.krun}, and its workload config.
 *
 * <p>{@link dev.jkrun.init.GuestInit#binary()} gives the static init program (built from
 * {@code src/main/c} by make during the Maven build). The VMM serves it from the root virtio-fs
 * share as the virtual file {@code /init.krun} together with {@code /.jkrun-config}, the bytes of
 * {@link dev.jkrun.init.InitConfig#encode()}, and boots with {@code init=/init.krun}.
 *
 * <p>The init mounts /proc, /sys, /dev, /dev/pts, /dev/shm and cgroup2 (and tmpfs on /tmp, /run,
 * /var/tmp when the root is read-only), applies the config, runs the workload as its child in a
 * new session, forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to it, reaps every orphan,
 * and finally reports the status with {@code ioctl(open("/"), 0x7602, status)} on the virtio-fs
 * root (FUSE_IOCTL cmd 0x7602, the status in {@code arg}, no in/out data), then {@code sync()}
 * and {@code reboot(RB_AUTOBOOT)}. Status: the workload's exit code, 128+N for signal N, 125 for
 * a set-up failure (one line on stderr), 126 cannot execute, 127 not found.
 *
 * <p>Without {@code /.jkrun-config}, the init falls back to libkrun's kernel-command-line
 * interface: KRUN_INIT + its own argv, KRUN_WORKDIR, KRUN_RLIMITS, HOSTNAME, KRUN_HOME, KRUN_TERM,
 * KRUN_BLOCK_ROOT_*, other variables passed through.
 */
package dev.jkrun.init;
