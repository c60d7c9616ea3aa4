/*
 * jkrun guest init (/init.krun): PID 1 of a jkrun microVM.
 *
 * 1. Standard mounts (/proc, /sys, /dev, /dev/pts, /dev/shm, cgroup2; tmpfs on /tmp, /run and
 *    /var/tmp when the root is read-only).
 * 2. Reads the workload config from /.jkrun-config (format in config.h), a virtual file served
 *    by the VMM's root share; without it, libkrun's KRUN_* variables and argv (config.c).
 * 3. Optional block-device root, stdio ports, extra virtio-fs mounts, hostname, rlimits,
 *    environment, working directory.
 * 4. Forks the workload, forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT to its process group and reaps
 *    every child until the workload exits.
 * 5. Reports the status with ioctl(root, 0x7602 = _IO('v', 2), status) on the virtio-fs root
 *    (the value travels as the ioctl's integer argument, as in libkrun), sync(), reboot().
 *
 * Exit statuses: the workload's code, or 128+N when killed by signal N; 125 when set-up fails
 * (one "jkrun-init: ..." line on stderr); 126 when the program cannot be executed; 127 when it
 * is not found.
 *
 * Which failures are fatal (125): a /proc mount failure, a malformed or unreadable config,
 * a root-disk, stdio-port or extra virtio-fs mount that cannot be set up, hostname, rlimit and
 * chdir failures. Best effort (silent unless JKRUN_INIT_DEBUG is set): /sys, /dev (the kernel may
 * have mounted it already, or the test namespace may not allow it), /dev/pts, /dev/shm, cgroup2,
 * the /dev links, the read-only-root tmpfs mounts, bringing up lo (and dummy0 for TSI) and, with TSI, an
 * /etc/resolv.conf naming the host's resolvers (provide_resolv_conf).
 *
 * Host tests only (variables in init's own environment, never passed to the workload):
 *   JKRUN_INIT_TEST_CONFIG=<path>   read the config from <path> instead of /.jkrun-config
 *   JKRUN_INIT_TEST_REPORT=<path>   write the status as decimal text to <path> and exit(status)
 *                                   instead of the ioctl and reboot
 *   JKRUN_INIT_TEST_CMDLINE=<path>  read the kernel command line from <path> instead of /proc/cmdline
 *   JKRUN_INIT_TEST_TSI_IFACE=<if>  with tsi_hijack, give <if> the TSI address instead of dummy0
 *   JKRUN_INIT_TEST_DHCP_TIMEOUT_MS=<ms>  wait that long for an interface and its lease instead of 15 s
 *   JKRUN_INIT_TEST_PORTS=<dir>     look for virtio-port names under <dir> (default
 *                                   /sys/class/virtio-ports) and their devices in <dir>/../dev
 *                                   (default /dev)
 */
#define _GNU_SOURCE
#include "config.h"
#include "dhcp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define CONFIG_PATH "/.jkrun-config"
#define EXIT_IOCTL 0x7602 /* _IO('v', 2): libkrun's "set exit code" on the virtio-fs root */
#define FUSE_SUPER_MAGIC 0x65735546
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#define EXIT_SETUP 125
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127

static int debug;
static int report_fd = -1;     /* the virtio-fs root, or the test report file */
static int test_mode;
static const char *ports_dir = "/sys/class/virtio-ports";
static char ports_dev_dir[4096] = "/dev";

static void report_and_halt(int status) __attribute__((noreturn));

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char *fmt, ...)
{
    if (!debug)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("jkrun-init: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* A set-up failure: one line on stderr, then status 125. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("jkrun-init: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    report_and_halt(EXIT_SETUP);
}

static int do_mount(const char *src, const char *target, const char *type, unsigned long flags,
                    const char *data)
{
    /* A read-only root may still hold the directory; mount() tells. */
    (void)mkdir(target, 0755);
    if (mount(src, target, type, flags, data) == 0 || errno == EBUSY)
        return 0;
    return -1;
}

static void ensure_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            continue;
        int c = open("/dev/console", O_RDWR | O_NOCTTY);
        if (c < 0)
            c = open("/dev/null", O_RDWR);
        if (c < 0)
            return;
        if (c != fd) {
            dup2(c, fd);
            close(c);
        }
    }
}

static void dev_link(const char *target, const char *link)
{
    struct stat st;
    if (lstat(link, &st) == 0)
        return;
    if (symlink(target, link) != 0)
        warn("symlink %s: %s", link, strerror(errno));
}

static void standard_mounts(void)
{
    const unsigned long common = MS_NODEV | MS_NOEXEC | MS_NOSUID | MS_RELATIME;
    if (do_mount("proc", "/proc", "proc", common, NULL) != 0)
        fail("mount /proc: %s", strerror(errno));
    if (do_mount("sysfs", "/sys", "sysfs", common, NULL) != 0)
        warn("mount /sys: %s", strerror(errno));
    if (do_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID | MS_RELATIME, "mode=0755") != 0)
        warn("mount /dev: %s", strerror(errno));
    ensure_std_fds();
    if (do_mount("devpts", "/dev/pts", "devpts", MS_NOEXEC | MS_NOSUID | MS_RELATIME,
                 "newinstance,gid=5,mode=620,ptmxmode=666") != 0)
        warn("mount /dev/pts: %s", strerror(errno));
    if (do_mount("shm", "/dev/shm", "tmpfs", MS_NODEV | MS_NOEXEC | MS_NOSUID | MS_RELATIME,
                 "mode=1777") != 0)
        warn("mount /dev/shm: %s", strerror(errno));
    if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", common, NULL) != 0 && errno != EBUSY)
        warn("mount /sys/fs/cgroup: %s", strerror(errno));
    dev_link("pts/ptmx", "/dev/ptmx");
    dev_link("/proc/self/fd", "/dev/fd");
    dev_link("/proc/self/fd/0", "/dev/stdin");
    dev_link("/proc/self/fd/1", "/dev/stdout");
    dev_link("/proc/self/fd/2", "/dev/stderr");
}

static int root_is_read_only(void)
{
    struct statvfs sv;
    if (statvfs("/", &sv) == 0 && (sv.f_flag & ST_RDONLY))
        return 1;
    return access("/", W_OK) != 0 && errno == EROFS;
}

static void read_only_root_mounts(void)
{
    static const struct { const char *path; const char *opts; } dirs[] = {
        { "/tmp", "mode=1777" }, { "/run", "mode=0755" }, { "/var/tmp", "mode=1777" },
    };
    if (!root_is_read_only())
        return;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        struct stat st;
        if (stat(dirs[i].path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (mount("tmpfs", dirs[i].path, "tmpfs", MS_NODEV | MS_NOSUID | MS_RELATIME,
                  dirs[i].opts) != 0)
            warn("mount tmpfs on %s: %s", dirs[i].path, strerror(errno));
    }
}

/* Reads the whole file; NULL with errno set on failure. */
static char *read_file(const char *path, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf == NULL) {
            close(fd);
            errno = ENOMEM;
            return NULL;
        }
        if (len == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (nb == NULL)
                free(buf);
            buf = nb;
            continue;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    *len_out = len;
    return buf;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char *p = strdup(path);
    if (p == NULL)
        return -1;
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, mode) != 0 && errno != EEXIST) {
                free(p);
                return -1;
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    free(p);
    return 0;
}

static int mount_probe(const char *dev, const char *target, const char *opts)
{
    FILE *f = fopen("/proc/filesystems", "re");
    if (f == NULL)
        return -1;
    char line[256];
    int err = ENODEV;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "nodev", 5) == 0)
            continue;
        char *type = line + strspn(line, " \t");
        type[strcspn(type, " \t\n")] = '\0';
        if (type[0] == '\0')
            continue;
        if (mount(dev, target, type, 0, opts) == 0) {
            fclose(f);
            return 0;
        }
        if (errno != EINVAL)
            err = errno;
    }
    fclose(f);
    errno = err;
    return -1;
}

/* Mounts the block device and makes it the root (mount-move + chroot, as libkrun does); the
 * standard mounts are then made again inside it. */
static void switch_to_root_disk(const struct config *cfg)
{
    const char *target = "/newroot";
    if (mkdir(target, 0755) != 0 && errno != EEXIST) {
        /* A read-only root share: mount under /dev (a devtmpfs) instead. */
        target = "/dev/.jkrun-newroot";
        if (mkdir(target, 0755) != 0 && errno != EEXIST)
            fail("root-disk: mkdir %s: %s", target, strerror(errno));
    }
    const char *opts = cfg->root_options[0] ? cfg->root_options : NULL;
    int rc = cfg->root_fstype[0] ? mount(cfg->root_device, target, cfg->root_fstype, 0, opts)
                                 : mount_probe(cfg->root_device, target, opts);
    if (rc != 0)
        fail("root-disk: mount %s on %s: %s", cfg->root_device, target, strerror(errno));
    if (chdir(target) != 0)
        fail("root-disk: chdir %s: %s", target, strerror(errno));
    if (mount(".", "/", NULL, MS_MOVE, NULL) != 0)
        fail("root-disk: move %s to /: %s", target, strerror(errno));
    if (chroot(".") != 0 || chdir("/") != 0)
        fail("root-disk: chroot: %s", strerror(errno));
    standard_mounts();
}

/* A read-only root (the host's / by default) cannot grow /mnt/TAG: give /mnt a tmpfs of its own, once. */
static int mnt_tmpfs(void)
{
    static int done;
    if (!done && mount("tmpfs", "/mnt", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") == 0)
        done = 1;
    if (!done)
        errno = EROFS;
    return done;
}

static void extra_mounts(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_mounts; i++) {
        const struct mount_entry *m = &cfg->mounts[i];
        int rc = mkdir_p(m->path, 0755);
        if (rc != 0 && errno == EROFS && strncmp(m->path, "/mnt/", 5) == 0 && mnt_tmpfs())
            rc = mkdir_p(m->path, 0755);
        if (rc != 0)
            fail("mount %s: mkdir %s: %s", m->tag, m->path, strerror(errno));
        if (mount(m->tag, m->path, "virtiofs", 0, NULL) != 0)
            fail("mount %s on %s: %s", m->tag, m->path, strerror(errno));
    }
}

/* Finds the virtio-console port called `name` (its /sys/class/virtio-ports/vportNpM/name) and
 * puts its device path into `path`. Returns 0 when found. */
static int find_port(const char *name, char *path, size_t size)
{
    DIR *d = opendir(ports_dir);
    if (d == NULL)
        return -1;
    struct dirent *de;
    int found = -1;
    while (found != 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char np[sizeof ports_dev_dir + 512], n[256];
        snprintf(np, sizeof np, "%s/%s/name", ports_dir, de->d_name);
        FILE *f = fopen(np, "re");
        if (f == NULL)
            continue;
        if (fgets(n, sizeof n, f) == NULL)
            n[0] = '\0';
        fclose(f);
        n[strcspn(n, "\n")] = '\0';
        if (strcmp(n, name) == 0) {
            snprintf(path, size, "%s/%s", ports_dev_dir, de->d_name);
            found = 0;
        }
    }
    closedir(d);
    return found;
}

/* stdio "ports": dup the krun-stdin/krun-stdout/krun-stderr virtio-console ports onto 0, 1, 2
 * (in init itself, so that its own messages reach the workload's stderr too). A port that is
 * absent leaves that descriptor on the console. */
static void setup_stdio_ports(void)
{
    static const char *const names[] = { "krun-stdin", "krun-stdout", "krun-stderr" };
    if (access(ports_dir, F_OK) != 0)
        fail("stdio ports: %s: %s", ports_dir, strerror(errno));
    for (int fd = 0; fd < 3; fd++) {
        char path[sizeof ports_dev_dir + 512];
        if (find_port(names[fd], path, sizeof path) != 0)
            continue;
        int p = open(path, (fd == 0 ? O_RDONLY : O_WRONLY) | O_NOCTTY);
        if (p < 0)
            fail("stdio ports: open %s (%s): %s", path, names[fd], strerror(errno));
        if (dup2(p, fd) < 0)
            fail("stdio ports: dup2 %s: %s", path, strerror(errno));
        close(p);
    }
}

/* The host's orderly stop: a child of init blocks on the "jkrun-control" port and, when the host
 * writes "poweroff", sends SIGTERM to init, which forwards it to the workload's process group like
 * any SIGTERM; the workload's exit is then reported and the VM powers off as usual. The host
 * forces the VM off if that takes longer than its grace period. */
static void start_control_watcher(void)
{
    char path[sizeof ports_dev_dir + 512];
    if (find_port("jkrun-control", path, sizeof path) != 0)
        return;
    pid_t pid = fork();
    if (pid != 0) {
        if (pid < 0)
            warn("control watcher: fork: %s", strerror(errno));
        return;
    }
    int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        warn("control watcher: open %s: %s", path, strerror(errno));
        _exit(0);
    }
    char buf[256];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(0);
        have += (size_t)n;
        buf[have] = '\0';
        if (strstr(buf, "poweroff") != NULL) {
            if (debug)
                fprintf(stderr, "jkrun-init: power-off requested by the host\n");
            kill(1, SIGTERM);
            have = 0;
        } else if (have >= sizeof buf - 1) {
            have = 0;
        }
    }
}

/*
 * Interfaces are configured over AF_NETLINK only: with the kernel's tsi_hijack (tsi_hijack_unix) every userspace
 * AF_INET (AF_UNIX) socket becomes a TSI socket, and netlink is the one family TSI never takes. The generic
 * SIOCxIFxxx ioctls work on any socket (net/socket.c falls back to dev_ioctl).
 */
static int link_up(int s, const char *name)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
        return -1;
    if (ifr.ifr_flags & IFF_UP)
        return 0;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    return ioctl(s, SIOCSIFFLAGS, &ifr);
}

static int nl_request(int s, struct nlmsghdr *nh);

/* RTM_NEWADDR: an IPv4 address with its prefix on interface name; an address already there is success. */
static int add_ipv4(int s, const char *name, const char *addr, int prefix)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    if (ioctl(s, SIOCGIFINDEX, &ifr) != 0)
        return -1;
    struct in_addr a;
    if (inet_pton(AF_INET, addr, &a) != 1) {
        errno = EINVAL;
        return -1;
    }
    struct {
        struct nlmsghdr nh;
        struct ifaddrmsg ifa;
        char attrs[2 * RTA_SPACE(sizeof a)];
    } req;
    memset(&req, 0, sizeof req);
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof req.ifa);
    req.nh.nlmsg_type = RTM_NEWADDR;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    req.nh.nlmsg_seq = 1;
    req.ifa.ifa_family = AF_INET;
    req.ifa.ifa_prefixlen = (unsigned char)prefix;
    req.ifa.ifa_index = (unsigned)ifr.ifr_ifindex;
    unsigned short types[2] = {IFA_LOCAL, IFA_ADDRESS};
    for (int i = 0; i < 2; i++) {
        struct rtattr *rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
        rta->rta_type = types[i];
        rta->rta_len = RTA_LENGTH(sizeof a);
        memcpy(RTA_DATA(rta), &a, sizeof a);
        req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_SPACE(sizeof a);
    }
    if (nl_request(s, &req.nh) != 0)
        return -1;
    return link_up(s, name);
}

/* Sends one netlink request asking for an ACK and reads it: 0, or -1 with errno (EEXIST is success). */
static int nl_request(int s, struct nlmsghdr *nh)
{
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (sendto(s, nh, nh->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
        return -1;
    char reply[512];
    ssize_t n;
    do
        n = recv(s, reply, sizeof reply, 0);
    while (n < 0 && errno == EINTR);
    if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)))
        return -1;
    struct nlmsghdr *rh = (struct nlmsghdr *)reply;
    if (rh->nlmsg_type != NLMSG_ERROR) {
        errno = EPROTO;
        return -1;
    }
    int err = ((struct nlmsgerr *)NLMSG_DATA(rh))->error;
    if (err != 0 && err != -EEXIST) {
        errno = -err;
        return -1;
    }
    return 0;
}

/* RTM_NEWROUTE: the default IPv4 route via gw on interface name (on-link, so a gateway outside the prefix works). */
static int add_default_route4(int s, const char *name, struct in_addr gw)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    if (ioctl(s, SIOCGIFINDEX, &ifr) != 0)
        return -1;
    struct {
        struct nlmsghdr nh;
        struct rtmsg rt;
        char attrs[RTA_SPACE(sizeof gw) + RTA_SPACE(sizeof(int))];
    } req;
    memset(&req, 0, sizeof req);
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof req.rt);
    req.nh.nlmsg_type = RTM_NEWROUTE;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    req.nh.nlmsg_seq = 2;
    req.rt.rtm_family = AF_INET;
    req.rt.rtm_table = RT_TABLE_MAIN;
    req.rt.rtm_protocol = RTPROT_BOOT;
    req.rt.rtm_scope = RT_SCOPE_UNIVERSE;
    req.rt.rtm_type = RTN_UNICAST;
    req.rt.rtm_flags = RTNH_F_ONLINK;
    struct rtattr *rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
    rta->rta_type = RTA_GATEWAY;
    rta->rta_len = RTA_LENGTH(sizeof gw);
    memcpy(RTA_DATA(rta), &gw, sizeof gw);
    req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_SPACE(sizeof gw);
    rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
    rta->rta_type = RTA_OIF;
    rta->rta_len = RTA_LENGTH(sizeof(int));
    memcpy(RTA_DATA(rta), &ifr.ifr_ifindex, sizeof(int));
    req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_SPACE(sizeof(int));
    return nl_request(s, &req.nh);
}

/* Whether word appears on the kernel command line before "--" (what follows belongs to init's argv). */
static int cmdline_has(const char *word)
{
    const char *path = getenv("JKRUN_INIT_TEST_CMDLINE");
    size_t len = 0;
    char *line = read_file(path != NULL && path[0] != '\0' ? path : "/proc/cmdline", &len);
    if (line == NULL)
        return 0;
    int found = 0;
    for (char *tok = strtok(line, " \t\n"); tok != NULL && strcmp(tok, "--") != 0; tok = strtok(NULL, " \t\n")) {
        if (strcmp(tok, word) == 0)
            found = 1;
    }
    free(line);
    return found;
}

/*
 * lo up; with TSI (tsi_hijack on the command line), dummy0 (a built-in of libkrunfw's kernel) as 203.0.113.1/24
 * (TEST-NET-3, RFC 5737), as libkrun's init: a non-loopback address, so programs that ask for one
 * (getaddrinfo's AI_ADDRCONFIG) use the network, and no default route, so connects to anything else fall back
 * to the host through TSI. Best effort: a guest without the interface still runs.
 */
static void network_up(int tsi)
{
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s < 0) {
        warn("netlink: %s", strerror(errno));
        return;
    }
    if (link_up(s, "lo") != 0)
        warn("lo up: %s", strerror(errno));
    if (tsi) {
        const char *ifname = getenv("JKRUN_INIT_TEST_TSI_IFACE");
        if (ifname == NULL || ifname[0] == '\0')
            ifname = "dummy0";
        if (add_ipv4(s, ifname, "203.0.113.1", 24) != 0)
            warn("%s 203.0.113.1/24: %s", ifname, strerror(errno));
    }
    close(s);
}

#ifndef DHCP_TIMEOUT_MS
#define DHCP_TIMEOUT_MS 15000
#endif

/* Waits up to timeout_ms for interface ifname to exist (a NIC's driver may still be probing when init starts). */
static void wait_for_iface(int s, const char *ifname, int timeout_ms)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    for (int waited = 0; ioctl(s, SIOCGIFINDEX, &ifr) != 0 && waited < timeout_ms; waited += 50)
        usleep(50000);
}

/* How long to wait for an interface or a lease: DHCP_TIMEOUT_MS, or the host tests' shorter bound. */
static int net_timeout_ms(void)
{
    const char *t = getenv("JKRUN_INIT_TEST_DHCP_TIMEOUT_MS");
    return t != NULL && atoi(t) > 0 ? atoi(t) : DHCP_TIMEOUT_MS;
}

/*
 * Each static address of the config (ipv4 records): the interface up with its address and prefix, and a default
 * route via the first gateway given. A failure is fail() (status 125) naming the interface. Returns whether any
 * interface was configured; *routed says whether a default route was added.
 */
static int configure_static(const struct config *cfg, int *routed)
{
    if (cfg->n_ipv4 == 0)
        return 0;
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s < 0)
        fail("ipv4: netlink: %s", strerror(errno));
    for (size_t i = 0; i < cfg->n_ipv4; i++) {
        const struct ipv4_entry *e = &cfg->ipv4[i];
        wait_for_iface(s, e->ifname, net_timeout_ms());
        if (add_ipv4(s, e->ifname, e->address, e->prefix) != 0)
            fail("ipv4: %s %s/%d: %s", e->ifname, e->address, e->prefix, strerror(errno));
        if (e->gateway != NULL && !*routed) {
            struct in_addr g;
            inet_pton(AF_INET, e->gateway, &g); /* checked by the config parser */
            if (add_default_route4(s, e->ifname, g) != 0)
                fail("ipv4: %s default route via %s: %s", e->ifname, e->gateway, strerror(errno));
            *routed = 1;
        }
        if (debug)
            fprintf(stderr, "jkrun-init: ipv4: %s %s/%d via %s\n", e->ifname, e->address, e->prefix,
                    e->gateway != NULL ? e->gateway : "-");
    }
    close(s);
    return 1;
}

/*
 * Each interface the config names for DHCP: up, a lease (fail(), status 125, when none comes within
 * DHCP_TIMEOUT_MS), its address and prefix, a default route via its router (the first interface with one), and its
 * resolvers added to cfg's for resolv.conf. Returns whether any lease named resolvers.
 */
static int configure_dhcp(struct config *cfg, int routed)
{
    if (cfg->dhcp.len == 0)
        return 0;
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s < 0)
        fail("dhcp: netlink: %s", strerror(errno));
    int named = 0, timeout_ms = net_timeout_ms();
    for (size_t i = 0; i < cfg->dhcp.len; i++) {
        const char *ifname = cfg->dhcp.items[i];
        wait_for_iface(s, ifname, timeout_ms);
        if (link_up(s, ifname) != 0)
            fail("dhcp: %s up: %s", ifname, strerror(errno));
        struct dhcp_lease lease;
        char why[160];
        if (dhcp_lease(ifname, timeout_ms, &lease, why, sizeof why) != 0)
            fail("dhcp: %s", why);
        char addr[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN] = "-";
        inet_ntop(AF_INET, &lease.addr, addr, sizeof addr);
        if (add_ipv4(s, ifname, addr, lease.prefix) != 0)
            fail("dhcp: %s %s/%d: %s", ifname, addr, lease.prefix, strerror(errno));
        if (lease.mtu > 0) {
            struct ifreq mr;
            memset(&mr, 0, sizeof mr);
            snprintf(mr.ifr_name, sizeof mr.ifr_name, "%s", ifname);
            mr.ifr_mtu = lease.mtu;
            if (ioctl(s, SIOCSIFMTU, &mr) != 0)
                warn("dhcp: %s mtu %d: %s", ifname, lease.mtu, strerror(errno));
        }
        if (lease.has_router && !routed) {
            inet_ntop(AF_INET, &lease.router, gw, sizeof gw);
            if (add_default_route4(s, ifname, lease.router) != 0)
                fail("dhcp: %s default route via %s: %s", ifname, gw, strerror(errno));
            routed = 1;
        }
        for (int k = 0; k < lease.n_dns && cfg->dns_servers.len < MAX_DNS_SERVERS; k++) {
            char *d = malloc(INET_ADDRSTRLEN);
            if (d == NULL)
                fail("dhcp: out of memory");
            inet_ntop(AF_INET, &lease.dns[k], d, INET_ADDRSTRLEN);
            strlist_add(&cfg->dns_servers, d);
            named = 1;
        }
        if (debug)
            fprintf(stderr, "jkrun-init: dhcp: %s %s/%d via %s, %d resolvers\n", ifname, addr, lease.prefix, gw, lease.n_dns);
    }
    close(s);
    return named;
}

#define RESOLV_CONF "/etc/resolv.conf"
#define RESOLV_CONF_RUN_DIR "/run/jkrun"
#define RESOLV_CONF_RUN RESOLV_CONF_RUN_DIR "/resolv.conf"

/* Whether a nameserver address is one the guest can use: not loopback (the guest's own) nor unspecified (glibc reads
 * 0.0.0.0 as the local host). An address glibc cannot parse is not usable either; a "%scope" suffix is ignored. */
static int usable_server(const char *word, size_t n)
{
    char buf[INET6_ADDRSTRLEN + 1];
    const char *pct = memchr(word, '%', n); /* word is not NUL-terminated */
    size_t len = pct != NULL ? (size_t)(pct - word) : n;
    if (len == 0 || len >= sizeof buf)
        return 0;
    memcpy(buf, word, len);
    buf[len] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        unsigned long h = ntohl(a4.s_addr);
        return (h >> 24) != 127 && h != 0;
    }
    if (inet_pton(AF_INET6, buf, &a6) != 1 || IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6))
        return 0;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        const unsigned char *b = a6.s6_addr + 12;
        return b[0] != 127 && (b[0] | b[1] | b[2] | b[3]) != 0;
    }
    return 1;
}

/* Whether the resolv.conf text names at least one usable server ("nameserver ADDR" lines). */
static int names_usable_server(const char *text, size_t len)
{
    const char *end = text + len;
    for (const char *line = text; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            eol = end;
        const char *p = line;
        while (p < eol && (*p == ' ' || *p == '\t'))
            p++;
        if ((size_t)(eol - p) > 10 && memcmp(p, "nameserver", 10) == 0 && (p[10] == ' ' || p[10] == '\t')) {
            p += 10;
            while (p < eol && (*p == ' ' || *p == '\t'))
                p++;
            size_t n = 0;
            while (p + n < eol && p[n] != ' ' && p[n] != '\t' && p[n] != '\r' && p[n] != '#' && p[n] != ';')
                n++;
            if (usable_server(p, n))
                return 1;
        }
        line = eol + 1;
    }
    return 0;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        off += (size_t)n;
    }
    return close(fd);
}

/* /etc/resolv.conf as a dangling symlink (the host's own root with systemd-resolved: ../run/systemd/resolve/
 * stub-resolv.conf, and /run is a fresh tmpfs here): create its target, directories included. Writes path into
 * `out`. Returns -1 with errno set when it is no symlink or the target cannot be written. */
static int write_link_target(const char *text, char *out, size_t size)
{
    char target[4096];
    ssize_t n = readlink(RESOLV_CONF, target, sizeof target - 1);
    if (n <= 0)
        return -1;
    target[n] = '\0';
    if (target[0] == '/')
        snprintf(out, size, "%s", target);
    else
        snprintf(out, size, "/etc/%s", target);
    char *slash = strrchr(out, '/');
    if (slash != NULL && slash != out) {
        *slash = '\0';
        int rc = mkdir_p(out, 0755);
        *slash = '/';
        if (rc != 0)
            return -1;
    }
    return write_file(out, text);
}

/*
 * TSI: the guest's sockets reach what the host reaches, so the host's resolvers (the dns-* records, chosen by the VMM)
 * work from the guest; a DHCP lease names its own, and with static addresses the config's are the user's. When
 * tsi_hijack is on (or a lease or a static address came), resolvers are known and the root's /etc/resolv.conf is missing, empty
 * or names only loopback/unspecified servers (the host's own file behind a local stub), give the guest one naming
 * them: written in place when that works (a writable root; a symlink is written through, a dangling one gets its
 * target created, e.g. under the read-only root's /run tmpfs), else written to /run/jkrun/resolv.conf and
 * bind-mounted over the existing file. A file naming any other server is never touched. Best effort: warnings only.
 */
static void provide_resolv_conf(const struct config *cfg, int tsi, int dhcp, int configured)
{
    if (!(tsi || dhcp || configured) || cfg->dns_servers.len == 0)
        return;
    size_t len = 0;
    char *old = read_file(RESOLV_CONF, &len);
    if (old != NULL) {
        int usable = names_usable_server(old, len);
        free(old);
        if (usable)
            return;
    } else if (errno != ENOENT) {
        warn("%s: %s; left as it is", RESOLV_CONF, strerror(errno));
        return;
    }
    char *text = NULL;
    size_t text_len = 0;
    FILE *f = open_memstream(&text, &text_len);
    if (f == NULL) {
        warn("resolv.conf: %s", strerror(errno));
        return;
    }
    fputs(dhcp ? "# jkrun-init: the DHCP server's resolvers\n"
               : tsi ? "# jkrun-init: the host's resolvers, reached through TSI\n"
                     : "# jkrun-init: the configured resolvers\n", f);
    for (size_t i = 0; i < cfg->dns_servers.len; i++)
        fprintf(f, "nameserver %s\n", cfg->dns_servers.items[i]);
    if (cfg->dns_search != NULL)
        fprintf(f, "search %s\n", cfg->dns_search);
    if (cfg->dns_options != NULL)
        fprintf(f, "options %s\n", cfg->dns_options);
    if (fclose(f) != 0 || text == NULL) {
        warn("resolv.conf: %s", strerror(errno));
        free(text);
        return;
    }

    char where[8192] = RESOLV_CONF;
    (void)mkdir("/etc", 0755);
    int rc = write_file(RESOLV_CONF, text); /* through a symlink to an existing target too */
    int err = errno;
    if (rc != 0 && err == ENOENT)
        rc = write_link_target(text, where, sizeof where);
    struct stat st;
    if (rc == 0) {
        if (debug)
            fprintf(stderr, "jkrun-init: %s: resolvers written to %s\n", RESOLV_CONF, where);
    } else if (stat(RESOLV_CONF, &st) != 0) {
        warn("%s: %s, and on this root it cannot be created: left missing", RESOLV_CONF, strerror(err));
    } else if ((mkdir(RESOLV_CONF_RUN_DIR, 0755) != 0 && errno != EEXIST) || write_file(RESOLV_CONF_RUN, text) != 0) {
        warn("%s: %s: %s", RESOLV_CONF, RESOLV_CONF_RUN, strerror(errno));
    } else if (mount(RESOLV_CONF_RUN, RESOLV_CONF, NULL, MS_BIND, NULL) != 0) {
        warn("%s: bind-mount %s over it: %s", RESOLV_CONF, RESOLV_CONF_RUN, strerror(errno));
    } else if (debug) {
        fprintf(stderr, "jkrun-init: %s: resolvers in %s, mounted over it\n", RESOLV_CONF, RESOLV_CONF_RUN);
    }
    free(text);
}

static void set_hostname(const struct config *cfg)
{
    const char *name = cfg->hostname;
    if (name == NULL || name[0] == '\0') {
        char cur[256] = "";
        if (gethostname(cur, sizeof cur) == 0 && cur[0] != '\0' && strcmp(cur, "(none)") != 0)
            return;
        name = "localhost";
    }
    if (sethostname(name, strlen(name)) != 0)
        fail("hostname '%s': %s", name, strerror(errno));
}

static void set_rlimits(const struct config *cfg)
{
    static const char *const names[] = {
        "CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
        "MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
    };
    for (size_t i = 0; i < cfg->n_rlimits; i++) {
        const struct rlimit_entry *r = &cfg->rlimits[i];
        if (setrlimit((__rlimit_resource_t)r->resource, &r->value) != 0)
            fail("rlimit %s: %s", names[r->resource], strerror(errno));
    }
}

/* The workload's environment: exactly the configured one, plus PATH, HOME (and TERM on a
 * terminal) when missing. Later duplicates win. */
static void set_environment(const struct config *cfg)
{
    clearenv();
    for (size_t i = 0; i < cfg->env.len; i++)
        if (putenv(cfg->env.items[i]) != 0)
            fail("env: %s", strerror(errno));
    if (getenv("PATH") == NULL)
        setenv("PATH", DEFAULT_PATH, 1);
    if (getenv("HOME") == NULL)
        setenv("HOME", "/", 1);
    if (cfg->tty && getenv("TERM") == NULL)
        setenv("TERM", "linux", 1);
}

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
#define N_FORWARDED (sizeof forwarded / sizeof forwarded[0])

static void noop_handler(int sig) { (void)sig; }

static sigset_t wait_set, old_mask;

/* PID 1 drops signals whose disposition is SIG_DFL: install a handler, then block them (from the
 * start, so that none sent early is lost) and take them with sigwaitinfo once the workload runs. */
static void setup_signals(void)
{
    sigemptyset(&wait_set);
    sigaddset(&wait_set, SIGCHLD);
    for (size_t i = 0; i < N_FORWARDED; i++)
        sigaddset(&wait_set, forwarded[i]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = noop_handler;
    for (size_t i = 0; i < N_FORWARDED; i++)
        sigaction(forwarded[i], &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sigprocmask(SIG_BLOCK, &wait_set, &old_mask);
}

struct exec_failure {
    int status;
    int err;
};

static void child_fail(int pipe_fd, int status, int err) __attribute__((noreturn));
static void child_fail(int pipe_fd, int status, int err)
{
    struct exec_failure f = { status, err };
    (void)!write(pipe_fd, &f, sizeof f);
    _exit(status);
}

static void run_child(const struct config *cfg, char **argv, int pipe_fd)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (size_t i = 0; i < N_FORWARDED; i++)
        sigaction(forwarded[i], &dfl, NULL);
    sigaction(SIGCHLD, &dfl, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    if (setsid() < 0) {
        fprintf(stderr, "jkrun-init: setsid: %s\n", strerror(errno));
        child_fail(pipe_fd, EXIT_SETUP, errno);
    }
    /* The first terminal among stdin, stdout, stderr (the console) becomes the controlling
     * terminal, so that ^C typed on the host reaches the workload's foreground group. */
    for (int fd = 0; fd < 3; fd++) {
        if (isatty(fd)) {
            if (ioctl(fd, TIOCSCTTY, 1) != 0 && cfg->tty)
                warn("TIOCSCTTY: %s", strerror(errno));
            break;
        }
    }
    execvp(cfg->exec, argv);
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
        fprintf(stderr, "jkrun-init: %s: not found\n", cfg->exec);
        child_fail(pipe_fd, EXIT_NOT_FOUND, err);
    }
    fprintf(stderr, "jkrun-init: %s: cannot execute: %s\n", cfg->exec, strerror(err));
    child_fail(pipe_fd, EXIT_CANNOT_EXEC, err);
}

/* Runs the workload and returns its status; reaps every other child meanwhile. */
static int run_workload(const struct config *cfg)
{
    size_t argc = cfg->args.len + 1;
    char **argv = calloc(argc + 1, sizeof(char *));
    if (argv == NULL)
        fail("out of memory");
    argv[0] = cfg->exec;
    for (size_t i = 0; i < cfg->args.len; i++)
        argv[i + 1] = cfg->args.items[i];

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        fail("pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        fail("fork: %s", strerror(errno));
    if (pid == 0) {
        close(pipefd[0]);
        run_child(cfg, argv, pipefd[1]);
    }
    close(pipefd[1]);
    struct exec_failure f;
    ssize_t n;
    do
        n = read(pipefd[0], &f, sizeof f);
    while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    int failed_status = n == (ssize_t)sizeof f ? f.status : -1;

    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&wait_set, &si);
        if (sig < 0)
            continue;
        if (sig != SIGCHLD) {
            if (kill(-pid, sig) != 0)
                kill(pid, sig);
            continue;
        }
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
            if (p != pid)
                continue;
            if (failed_status >= 0)
                return failed_status;
            if (WIFEXITED(st))
                return WEXITSTATUS(st);
            if (WIFSIGNALED(st))
                return 128 + WTERMSIG(st);
        }
        if (p < 0 && errno == ECHILD)
            return EXIT_SETUP;
    }
}

static void report_and_halt(int status)
{
    fflush(stdout);
    fflush(stderr);
    if (test_mode) {
        if (report_fd >= 0) {
            char buf[16];
            int n = snprintf(buf, sizeof buf, "%d\n", status);
            (void)!write(report_fd, buf, (size_t)n);
            close(report_fd);
        }
        exit(status);
    }
    struct statfs sf;
    if (report_fd >= 0 && fstatfs(report_fd, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC) {
        if (ioctl(report_fd, EXIT_IOCTL, (unsigned long)status) != 0)
            warn("exit-status ioctl: %s", strerror(errno));
    }
    sync();
    reboot(RB_AUTOBOOT);
    /* Not reached in a VM; PID 1 exiting panics the kernel, and panic=-1 reboots. */
    exit(status);
}

int main(int argc, char **argv, char **envp)
{
    const char *config_path = CONFIG_PATH;
    const char *v;
    debug = getenv("JKRUN_INIT_DEBUG") != NULL;
    if ((v = getenv("JKRUN_INIT_TEST_CONFIG")) != NULL && v[0] != '\0')
        config_path = v;
    if ((v = getenv("JKRUN_INIT_TEST_PORTS")) != NULL && v[0] != '\0') {
        ports_dir = v;
        snprintf(ports_dev_dir, sizeof ports_dev_dir, "%s/../dev", v);
    }
    if ((v = getenv("JKRUN_INIT_TEST_REPORT")) != NULL && v[0] != '\0') {
        test_mode = 1;
        report_fd = open(v, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    } else {
        /* Opened before any root switch: the status goes to the virtio-fs root. */
        report_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    setup_signals();
    umask(022);

    standard_mounts();

    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    size_t len = 0;
    char *buf = read_file(config_path, &len);
    if (buf != NULL) {
        if (config_parse(buf, len, &cfg) != 0)
            fail("%s", config_error);
    } else if (errno == ENOENT) {
        if (config_from_krun_env(argc, argv, envp, &cfg) != 0)
            fail("%s", config_error);
    } else {
        fail("config %s: %s", config_path, strerror(errno));
    }

    if (cfg.stdio_ports)
        setup_stdio_ports();
    if (cfg.root_device != NULL)
        switch_to_root_disk(&cfg);
    extra_mounts(&cfg);
    read_only_root_mounts();
    int tsi = cmdline_has("tsi_hijack");
    network_up(tsi);
    int routed = 0;
    int configured = configure_static(&cfg, &routed);
    int leased = configure_dhcp(&cfg, routed);
    provide_resolv_conf(&cfg, tsi, leased, configured);
    set_hostname(&cfg);
    set_rlimits(&cfg);
    set_environment(&cfg);
    const char *workdir = cfg.workdir != NULL && cfg.workdir[0] != '\0' ? cfg.workdir : "/";
    if (chdir(workdir) != 0)
        fail("workdir %s: %s", workdir, strerror(errno));
    start_control_watcher();

    report_and_halt(run_workload(&cfg));
}
