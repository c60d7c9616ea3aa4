package dev.jkrun.init;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The workload that the guest init runs, and how: the content of the virtual file
 * {@code /.jkrun-config} in the root share. Passing it in a file, not on the kernel command
 * line, avoids the 2048-byte and 32-argument limits there.
 *
 * <p>The file is a sequence of records {@code KEY NUL VALUE NUL}; the first is
 * {@code jkrun-init NUL 1 NUL} (the format version). Keys, each at most once unless repeated:
 * <ul>
 * <li>{@code exec}: the program (PATH search as execvp, with the workload's PATH); argv[0]</li>
 * <li>{@code arg} (repeated, in order): argv[1..]</li>
 * <li>{@code env} (repeated): {@code NAME=VALUE}; the workload gets exactly these, plus PATH, HOME
 *     and (on a terminal) TERM=linux when missing</li>
 * <li>{@code workdir}: the working directory (default {@code /})</li>
 * <li>{@code hostname}</li>
 * <li>{@code rlimit} (repeated): {@code NOFILE=1024:4096}, see {@link RLimit}</li>
 * <li>{@code mount} (repeated): {@code TAG:PATH}, see {@link VirtioFsMount}</li>
 * <li>{@code root-disk}: {@code DEVICE:FSTYPE:OPTIONS}, see {@link RootDisk}</li>
 * <li>{@code tty}: {@code 1} when the host console is a terminal, else {@code 0}</li>
 * <li>{@code stdio}: {@code console}, or {@code ports} for the krun-stdin/krun-stdout/krun-stderr
 *     virtio-console ports</li>
 * <li>{@code dns-server} (repeated, 1 to 3), {@code dns-search}, {@code dns-options}: see {@link Resolvers}</li>
 * <li>{@code dhcp} (repeated): an interface init configures from a DHCP server before the workload (address,
 *     default route, resolvers); no lease within 15 s is exit status 125</li>
 * <li>{@code ipv4} (repeated): a static address for an interface, see {@link StaticIpv4}; with {@code dns-server}
 *     records those servers go into resolv.conf</li>
 * </ul>
 * The C side ({@code src/main/c/config.c}) rejects anything else with exit status 125.
 *
 * @param exec the program to run
 * @param args its arguments after argv[0]
 * @param env {@code NAME=VALUE} items, in order (a later duplicate wins)
 * @param workdir an absolute directory, or null for {@code /}
 * @param hostname or null for {@code localhost}
 * @param rlimits resource limits applied before exec
 * @param mounts extra virtio-fs shares
 * @param rootDisk or null to keep the virtio-fs root
 * @param tty whether the host console is a terminal
 * @param stdioPorts whether stdin/stdout/stderr travel on their own virtio-console ports
 * @param resolvers resolvers for the guest's resolv.conf under TSI or with static addresses, or null for none
 * @param dhcp interfaces to configure over DHCP (eth0...)
 * @param ipv4 static addresses (an interface once, and not also under dhcp)
 */
public record InitConfig(String exec, List<String> args, List<String> env, String workdir, String hostname,
                         List<RLimit> rlimits, List<VirtioFsMount> mounts, RootDisk rootDisk, boolean tty,
                         boolean stdioPorts, Resolvers resolvers, List<String> dhcp, List<StaticIpv4> ipv4) {

    /** The name of the virtual config file in the root share. */
    public static final String FILE_NAME = ".jkrun-config";
    /** The format version, the value of the first record. */
    public static final String FORMAT_VERSION = "1";
    /** Linux HOST_NAME_MAX. */
    public static final int MAX_HOSTNAME_BYTES = 64;

    public InitConfig {
        if (exec == null || exec.isEmpty()) {
            throw new InvalidInitConfigException("exec", "no program given");
        }
        noNul("exec", exec);
        args = List.copyOf(args == null ? List.of() : args);
        args.forEach(a -> noNul("arg", a));
        env = List.copyOf(env == null ? List.of() : env);
        env.forEach(InitConfig::checkEnv);
        if (workdir != null) {
            noNul("workdir", workdir);
            if (!workdir.startsWith("/")) {
                throw new InvalidInitConfigException("workdir", "'" + workdir + "' is not absolute");
            }
        }
        if (hostname != null) {
            noNul("hostname", hostname);
            int n = hostname.getBytes(StandardCharsets.UTF_8).length;
            if (n == 0 || n > MAX_HOSTNAME_BYTES) {
                throw new InvalidInitConfigException("hostname", "'" + hostname + "' must be 1 to "
                        + MAX_HOSTNAME_BYTES + " bytes");
            }
        }
        rlimits = List.copyOf(rlimits == null ? List.of() : rlimits);
        mounts = List.copyOf(mounts == null ? List.of() : mounts);
        dhcp = List.copyOf(dhcp == null ? List.of() : dhcp);
        ipv4 = List.copyOf(ipv4 == null ? List.of() : ipv4);
        java.util.Set<String> seen = new java.util.HashSet<>();
        for (String i : dhcp) {
            if (!isInterfaceName(i)) {
                throw new InvalidInitConfigException("dhcp", "'" + i + "' is not an interface name");
            }
            if (!seen.add(i)) {
                throw new InvalidInitConfigException("dhcp", i + " is named twice");
            }
        }
        for (StaticIpv4 a : ipv4) {
            if (!seen.add(a.iface())) {
                throw new InvalidInitConfigException("ipv4", a.iface() + " is configured already (one address, static or DHCP)");
            }
        }
    }

    /** Without static addresses. */
    public InitConfig(String exec, List<String> args, List<String> env, String workdir, String hostname,
                      List<RLimit> rlimits, List<VirtioFsMount> mounts, RootDisk rootDisk, boolean tty,
                      boolean stdioPorts, Resolvers resolvers, List<String> dhcp) {
        this(exec, args, env, workdir, hostname, rlimits, mounts, rootDisk, tty, stdioPorts, resolvers, dhcp, List.of());
    }

    /**
     * Whether {@code s} is an interface name jkrun takes (dhcp and ipv4 records, tap devices): 1 to 15 (IFNAMSIZ − 1)
     * of {@code [A-Za-z0-9_.-]}, so never a path; init's config parser applies the same rule.
     */
    public static boolean isInterfaceName(String s) {
        return s != null && s.matches("[A-Za-z0-9_.-]{1,15}");
    }

    /** The same configuration with {@code ifaces} configured over DHCP as well. */
    public InitConfig withDhcp(List<String> ifaces) {
        List<String> all = new ArrayList<>(dhcp);
        ifaces.stream().filter(i -> !all.contains(i)).forEach(all::add);
        return new InitConfig(exec, args, env, workdir, hostname, rlimits, mounts, rootDisk, tty, stdioPorts, resolvers, all,
                ipv4);
    }

    /** The same configuration with {@code more} static addresses as well. */
    public InitConfig withIpv4(List<StaticIpv4> more) {
        List<StaticIpv4> all = new ArrayList<>(ipv4);
        all.addAll(more);
        return new InitConfig(exec, args, env, workdir, hostname, rlimits, mounts, rootDisk, tty, stdioPorts, resolvers, dhcp,
                all);
    }

    private static void noNul(String field, String value) {
        Objects.requireNonNull(value, field);
        if (value.indexOf('\0') >= 0) {
            throw new InvalidInitConfigException(field, "holds a NUL character");
        }
    }

    private static void checkEnv(String item) {
        noNul("env", item);
        if (item.indexOf('=') <= 0) {
            throw new InvalidInitConfigException("env", "'" + item + "' is not NAME=VALUE");
        }
    }

    public static Builder builder(String exec) {
        return new Builder(exec);
    }

    /** The record stream for {@code /.jkrun-config}. */
    public byte[] encode() {
        ByteArrayOutputStream out = new ByteArrayOutputStream(256);
        record(out, "jkrun-init", FORMAT_VERSION);
        record(out, "exec", exec);
        args.forEach(a -> record(out, "arg", a));
        env.forEach(e -> record(out, "env", e));
        if (workdir != null) {
            record(out, "workdir", workdir);
        }
        if (hostname != null) {
            record(out, "hostname", hostname);
        }
        rlimits.forEach(r -> record(out, "rlimit", r.encode()));
        mounts.forEach(m -> record(out, "mount", m.encode()));
        if (rootDisk != null) {
            record(out, "root-disk", rootDisk.encode());
        }
        record(out, "tty", tty ? "1" : "0");
        record(out, "stdio", stdioPorts ? "ports" : "console");
        if (resolvers != null) {
            resolvers.servers().forEach(s -> record(out, "dns-server", s));
            if (!resolvers.search().isEmpty()) {
                record(out, "dns-search", resolvers.encodedSearch());
            }
            if (!resolvers.options().isEmpty()) {
                record(out, "dns-options", resolvers.encodedOptions());
            }
        }
        dhcp.forEach(i -> record(out, "dhcp", i));
        ipv4.forEach(a -> record(out, "ipv4", a.encode()));
        return out.toByteArray();
    }

    private static void record(ByteArrayOutputStream out, String key, String value) {
        out.writeBytes(key.getBytes(StandardCharsets.UTF_8));
        out.write(0);
        out.writeBytes(value.getBytes(StandardCharsets.UTF_8));
        out.write(0);
    }

    /** Builds an {@link InitConfig}; {@link #build()} validates. */
    public static final class Builder {
        private final String exec;
        private final List<String> args = new ArrayList<>();
        private final List<String> env = new ArrayList<>();
        private String workdir;
        private String hostname;
        private final List<RLimit> rlimits = new ArrayList<>();
        private final List<VirtioFsMount> mounts = new ArrayList<>();
        private RootDisk rootDisk;
        private boolean tty;
        private boolean stdioPorts;
        private Resolvers resolvers;
        private final List<String> dhcp = new ArrayList<>();
        private final List<StaticIpv4> ipv4 = new ArrayList<>();

        private Builder(String exec) {
            this.exec = exec;
        }

        public Builder arg(String arg) {
            args.add(arg);
            return this;
        }

        public Builder args(List<String> more) {
            args.addAll(more);
            return this;
        }

        /** A {@code NAME=VALUE} item. */
        public Builder env(String item) {
            env.add(item);
            return this;
        }

        public Builder env(String name, String value) {
            if (name == null || name.isEmpty() || name.indexOf('=') >= 0) {
                throw new InvalidInitConfigException("env", "bad variable name '" + name + "'");
            }
            env.add(name + "=" + value);
            return this;
        }

        public Builder env(Map<String, String> vars) {
            vars.forEach(this::env);
            return this;
        }

        public Builder workdir(String dir) {
            this.workdir = dir;
            return this;
        }

        public Builder hostname(String name) {
            this.hostname = name;
            return this;
        }

        public Builder rlimit(RLimit limit) {
            rlimits.add(limit);
            return this;
        }

        /** {@code NAME=SOFT:HARD}, see {@link RLimit#parse}. */
        public Builder rlimit(String spec) {
            return rlimit(RLimit.parse(spec));
        }

        public Builder mount(String tag, String path) {
            mounts.add(new VirtioFsMount(tag, path));
            return this;
        }

        public Builder rootDisk(RootDisk disk) {
            this.rootDisk = disk;
            return this;
        }

        public Builder tty(boolean tty) {
            this.tty = tty;
            return this;
        }

        public Builder stdioPorts(boolean ports) {
            this.stdioPorts = ports;
            return this;
        }

        /** The guest's resolvers, used under TSI and with static addresses ({@link #ipv4}); null for none. */
        public Builder resolvers(Resolvers resolvers) {
            this.resolvers = resolvers;
            return this;
        }

        /** An interface ({@code eth0}) init configures from a DHCP server before the workload starts. */
        public Builder dhcp(String iface) {
            dhcp.add(iface);
            return this;
        }

        /** A static address init gives an interface before the workload starts. */
        public Builder ipv4(StaticIpv4 address) {
            ipv4.add(address);
            return this;
        }

        public InitConfig build() {
            return new InitConfig(exec, args, env, workdir, hostname, rlimits, mounts, rootDisk, tty, stdioPorts,
                    resolvers, dhcp, ipv4);
        }
    }
}
