/*
 * jkrun guest init: the workload configuration and its parsers.
 *
 * The config file format (written by dev.jkrun.init.InitConfig#encode, read by config_parse):
 *
 *   file   := record*
 *   record := KEY NUL VALUE NUL
 *
 * The first record must be "jkrun-init" = "1" (the format version). Values may hold any byte but
 * NUL; there is no size limit other than memory. Keys (a key marked "once" may appear at most once):
 *
 *   exec       once, required  the program to run; argv[0] is this string; PATH search applies
 *   arg        repeated        argv[1..], in order
 *   env        repeated        "NAME=VALUE"; NAME is non-empty
 *   workdir    once            chdir target, default "/"
 *   hostname   once            sethostname(); default "localhost" if the kernel left "(none)"
 *   rlimit     repeated        "NAME=SOFT:HARD"; NAME is RLIMIT_NOFILE, NOFILE or a number;
 *                              SOFT and HARD are decimal numbers or "unlimited"
 *   mount      repeated        "TAG:PATH": mount virtio-fs TAG on PATH (created if missing);
 *                              TAG holds no ':'
 *   root-disk  once            "DEVICE:FSTYPE:OPTIONS": mount DEVICE and make it the root;
 *                              an empty FSTYPE tries every block filesystem in /proc/filesystems
 *   tty        once            "1" if the console is a terminal on the host, else "0"
 *   stdio      once            "console" (default) or "ports": stdin/stdout/stderr are the
 *                              virtio-console ports named krun-stdin/krun-stdout/krun-stderr,
 *                              each one that is absent stays on the console
 *   dns-server repeated, 1..3  a resolver for /etc/resolv.conf under TSI: an IPv4 or IPv6 address
 *                              (inet_pton; no "%scope"); at most MAX_DNS_SERVERS (glibc's and
 *                              musl's MAXNS)
 *   dns-search once            the resolv.conf "search" list: words of printable ASCII (0x21-0x7e)
 *                              separated by single spaces
 *   dns-options once           the resolv.conf "options": words as dns-search
 *   dhcp       repeated        an interface (1-15 of [A-Za-z0-9_.-]) to configure from a DHCP server before
 *                              the workload starts: address, default route, resolvers; no lease within
 *                              DHCP_TIMEOUT_MS is an error (exit 125). libkrun's KRUN_DHCP=1 means eth0.
 *   ipv4       repeated        "IFNAME:ADDRESS/PREFIX" or "IFNAME:ADDRESS/PREFIX:GATEWAY": a static IPv4
 *                              address (PREFIX 1-32) for an interface, and a default route via GATEWAY (the
 *                              first one given wins); an interface at most once, and not also under dhcp.
 *                              With dns-server records, resolv.conf names those servers.
 *
 * dns-search and dns-options need at least one dns-server. init uses the dns-* records only with
 * tsi_hijack on the kernel command line, and only when the root's /etc/resolv.conf is missing,
 * empty or names no server but loopback ones (see provide_resolv_conf in init.c).
 *
 * An unknown key, a key without its value, or a repeated "once" key is an error (exit 125).
 */
#ifndef JKRUN_INIT_CONFIG_H
#define JKRUN_INIT_CONFIG_H

#include <stddef.h>
#include <sys/resource.h>

#define CONFIG_MAGIC_KEY "jkrun-init"
#define CONFIG_VERSION "1"
#define MAX_DNS_SERVERS 3

struct strlist {
    char **items; /* NULL-terminated */
    size_t len;
    size_t cap;
};

struct rlimit_entry {
    int resource;
    struct rlimit value;
};

struct ipv4_entry {
    char *ifname;
    char *address;           /* dotted quad, checked by inet_pton */
    int prefix;              /* 1..32 */
    char *gateway;           /* NULL: no route */
};

struct mount_entry {
    char *tag;
    char *path;
};

struct config {
    char *exec;
    struct strlist args;     /* argv[1..] */
    struct strlist env;      /* NAME=VALUE */
    char *workdir;
    char *hostname;
    struct rlimit_entry *rlimits;
    size_t n_rlimits;
    struct mount_entry *mounts;
    size_t n_mounts;
    char *root_device;       /* NULL: no root disk */
    char *root_fstype;       /* "" = probe */
    char *root_options;      /* "" = none */
    int tty;
    int stdio_ports;
    struct strlist dns_servers; /* IPv4/IPv6 literals, at most MAX_DNS_SERVERS */
    char *dns_search;        /* NULL: none; else space-separated words */
    char *dns_options;       /* NULL: none; else space-separated words */
    struct strlist dhcp;     /* interfaces to configure over DHCP */
    struct ipv4_entry *ipv4; /* static addresses */
    size_t n_ipv4;
};

/* Error message buffer filled by the parsers on failure. */
extern char config_error[512];

void strlist_add(struct strlist *l, char *s);

/* Parses the record stream buf[0..len). Returns 0, or -1 with config_error set. buf is modified
 * (values point into it) and must outlive cfg. */
int config_parse(char *buf, size_t len, struct config *cfg);

/* Parses "NAME=SOFT:HARD" (also "NAME:SOFT:HARD"). Returns 0 or -1 with config_error set. */
int parse_rlimit(const char *spec, struct rlimit_entry *out);

/* Fills cfg from libkrun-style variables (KRUN_INIT, KRUN_WORKDIR, KRUN_RLIMITS, HOSTNAME,
 * KRUN_HOME, KRUN_TERM, KRUN_BLOCK_ROOT_*) plus init's argv[1..]; the rest of envp becomes the
 * workload's environment. Returns 0 or -1 with config_error set. */
int config_from_krun_env(int argc, char **argv, char **envp, struct config *cfg);

#endif
