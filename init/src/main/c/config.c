/* jkrun guest init: config parsers (format in config.h). */
#define _GNU_SOURCE
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

char config_error[512];

static void set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(config_error, sizeof config_error, fmt, ap);
    va_end(ap);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        static const char msg[] = "jkrun-init: out of memory\n";
        (void)!fwrite(msg, 1, sizeof msg - 1, stderr);
        exit(125);
    }
    return q;
}

void strlist_add(struct strlist *l, char *s)
{
    if (l->len + 1 >= l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = xrealloc(l->items, l->cap * sizeof(char *));
    }
    l->items[l->len++] = s;
    l->items[l->len] = NULL;
}

/* Linux RLIMIT_* numbering (asm-generic/resource.h), indexed by resource id. */
static const char *const rlimit_names[] = {
    "CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
    "MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
};
#define N_RLIMITS ((int)(sizeof rlimit_names / sizeof rlimit_names[0]))

static int parse_u64(const char *s, size_t n, rlim_t *out)
{
    if (n == 9 && strncasecmp(s, "unlimited", 9) == 0) {
        *out = RLIM_INFINITY;
        return 0;
    }
    if (n == 0 || n > 20)
        return -1;
    unsigned long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        unsigned long long d = (unsigned long long)(s[i] - '0');
        if (v > (~0ULL - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = (rlim_t)v;
    return 0;
}

static int rlimit_id(const char *name, size_t n)
{
    if (n > 7 && strncasecmp(name, "RLIMIT_", 7) == 0) {
        name += 7;
        n -= 7;
    }
    for (int i = 0; i < N_RLIMITS; i++)
        if (strlen(rlimit_names[i]) == n && strncasecmp(name, rlimit_names[i], n) == 0)
            return i;
    rlim_t v;
    if (n > 0 && n < 5 && parse_u64(name, n, &v) == 0 && v < (rlim_t)N_RLIMITS)
        return (int)v;
    return -1;
}

int parse_rlimit(const char *spec, struct rlimit_entry *out)
{
    size_t nlen = strcspn(spec, "=:");
    if (spec[nlen] == '\0') {
        set_error("rlimit '%s': expected NAME=SOFT:HARD", spec);
        return -1;
    }
    int id = rlimit_id(spec, nlen);
    if (id < 0) {
        set_error("rlimit '%s': unknown resource '%.*s'", spec, (int)nlen, spec);
        return -1;
    }
    const char *soft = spec + nlen + 1;
    const char *colon = strchr(soft, ':');
    if (colon == NULL) {
        set_error("rlimit '%s': expected NAME=SOFT:HARD", spec);
        return -1;
    }
    const char *hard = colon + 1;
    if (parse_u64(soft, (size_t)(colon - soft), &out->value.rlim_cur) != 0
            || parse_u64(hard, strlen(hard), &out->value.rlim_max) != 0) {
        set_error("rlimit '%s': limits must be decimal numbers or 'unlimited'", spec);
        return -1;
    }
    if (out->value.rlim_max != RLIM_INFINITY
            && (out->value.rlim_cur == RLIM_INFINITY || out->value.rlim_cur > out->value.rlim_max)) {
        set_error("rlimit '%s': soft limit above hard limit", spec);
        return -1;
    }
    out->resource = id;
    return 0;
}

static int add_rlimit(struct config *cfg, const char *spec)
{
    struct rlimit_entry e;
    if (parse_rlimit(spec, &e) != 0)
        return -1;
    cfg->rlimits = xrealloc(cfg->rlimits, (cfg->n_rlimits + 1) * sizeof e);
    cfg->rlimits[cfg->n_rlimits++] = e;
    return 0;
}

static int add_mount(struct config *cfg, char *spec)
{
    char *colon = strchr(spec, ':');
    if (colon == NULL || colon == spec || colon[1] != '/') {
        set_error("mount '%s': expected TAG:/ABSOLUTE/PATH", spec);
        return -1;
    }
    *colon = '\0';
    cfg->mounts = xrealloc(cfg->mounts, (cfg->n_mounts + 1) * sizeof *cfg->mounts);
    cfg->mounts[cfg->n_mounts].tag = spec;
    cfg->mounts[cfg->n_mounts].path = colon + 1;
    cfg->n_mounts++;
    return 0;
}

static int set_root_disk(struct config *cfg, char *spec)
{
    char *c1 = strchr(spec, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c1 == spec || (c1 == NULL && spec[0] == '\0')) {
        set_error("root-disk '%s': expected DEVICE:FSTYPE:OPTIONS", spec);
        return -1;
    }
    cfg->root_device = spec;
    cfg->root_fstype = "";
    cfg->root_options = "";
    if (c1 != NULL) {
        *c1 = '\0';
        cfg->root_fstype = c1 + 1;
        if (c2 != NULL) {
            *c2 = '\0';
            cfg->root_options = c2 + 1;
        }
    }
    return 0;
}

static int check_env(const char *item)
{
    const char *eq = strchr(item, '=');
    if (eq == NULL || eq == item) {
        set_error("env '%s': expected NAME=VALUE", item);
        return -1;
    }
    return 0;
}

/* 1 to 15 (IFNAMSIZ - 1) of [A-Za-z0-9_.-]: what the builder accepts, never a path or "." */
static int iface_name(const char *s, size_t n)
{
    int ok = n >= 1 && n <= 15;
    for (size_t i = 0; ok && i < n; i++) {
        char c = s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    }
    return ok;
}

/* Whether ifname is configured already, over DHCP or statically (one way, once, per interface). */
static int iface_taken(const struct config *cfg, const char *ifname)
{
    for (size_t i = 0; i < cfg->dhcp.len; i++)
        if (strcmp(cfg->dhcp.items[i], ifname) == 0)
            return 1;
    for (size_t i = 0; i < cfg->n_ipv4; i++)
        if (strcmp(cfg->ipv4[i].ifname, ifname) == 0)
            return 1;
    return 0;
}

static int add_dhcp(struct config *cfg, char *value)
{
    if (!iface_name(value, strlen(value))) {
        set_error("dhcp '%s': not an interface name", value);
        return -1;
    }
    if (iface_taken(cfg, value)) {
        set_error("dhcp '%s': the interface is configured already", value);
        return -1;
    }
    strlist_add(&cfg->dhcp, value);
    return 0;
}

/* "IFNAME:ADDRESS/PREFIX[:GATEWAY]" (config.h); value is split in place. */
static int add_ipv4(struct config *cfg, char *value)
{
    char *colon = strchr(value, ':');
    char *slash = colon != NULL ? strchr(colon + 1, '/') : NULL;
    if (colon == NULL || slash == NULL || !iface_name(value, (size_t)(colon - value))) {
        set_error("ipv4 '%s': expected IFNAME:ADDRESS/PREFIX[:GATEWAY]", value);
        return -1;
    }
    *colon = '\0';
    *slash = '\0';
    char *address = colon + 1, *prefix = slash + 1;
    char *gateway = strchr(prefix, ':');
    if (gateway != NULL)
        *gateway++ = '\0';
    struct in_addr a, g;
    if (inet_pton(AF_INET, address, &a) != 1) {
        set_error("ipv4 %s: '%s' is not an IPv4 address", value, address);
        return -1;
    }
    char *end = NULL;
    long p = strtol(prefix, &end, 10);
    if (prefix[0] < '0' || prefix[0] > '9' || *end != '\0' || p < 1 || p > 32) {
        set_error("ipv4 %s: prefix '%s' is not 1 to 32", value, prefix);
        return -1;
    }
    if (gateway != NULL && inet_pton(AF_INET, gateway, &g) != 1) {
        set_error("ipv4 %s: gateway '%s' is not an IPv4 address", value, gateway);
        return -1;
    }
    if (iface_taken(cfg, value)) {
        set_error("ipv4 %s: the interface is configured already", value);
        return -1;
    }
    cfg->ipv4 = xrealloc(cfg->ipv4, (cfg->n_ipv4 + 1) * sizeof *cfg->ipv4);
    cfg->ipv4[cfg->n_ipv4++] = (struct ipv4_entry){value, address, (int)p, gateway};
    return 0;
}

static int add_dns_server(struct config *cfg, char *value)
{
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, value, addr) != 1 && inet_pton(AF_INET6, value, addr) != 1) {
        set_error("dns-server '%s': not an IPv4 or IPv6 address", value);
        return -1;
    }
    if (cfg->dns_servers.len >= MAX_DNS_SERVERS) {
        set_error("config: more than %d dns-server records", MAX_DNS_SERVERS);
        return -1;
    }
    strlist_add(&cfg->dns_servers, value);
    return 0;
}

/* dns-search, dns-options: words of printable ASCII separated by single spaces (a resolv.conf line's rest: no
 * newline can slip in). */
static int check_dns_words(const char *key, const char *value)
{
    size_t n = strlen(value);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c > 0x7e) {
            set_error("%s: holds a control or non-ASCII character (byte %zu)", key, i);
            return -1;
        }
    }
    if (n == 0 || value[0] == ' ' || value[n - 1] == ' ' || strstr(value, "  ") != NULL) {
        set_error("%s '%s': expected words separated by single spaces", key, value);
        return -1;
    }
    return 0;
}

static int set_once(char **slot, const char *key, char *value)
{
    if (*slot != NULL) {
        set_error("config: key '%s' given twice", key);
        return -1;
    }
    *slot = value;
    return 0;
}

int config_parse(char *buf, size_t len, struct config *cfg)
{
    size_t pos = 0;
    int first = 1;
    char *tty = NULL, *stdio = NULL, *root = NULL;
    while (pos < len) {
        char *key = buf + pos;
        char *kend = memchr(key, '\0', len - pos);
        if (kend == NULL) {
            set_error("config: truncated record at byte %zu", pos);
            return -1;
        }
        pos = (size_t)(kend - buf) + 1;
        char *value = buf + pos;
        char *vend = pos < len ? memchr(value, '\0', len - pos) : NULL;
        if (vend == NULL) {
            set_error("config: key '%s' has no value", key);
            return -1;
        }
        pos = (size_t)(vend - buf) + 1;

        if (first) {
            if (strcmp(key, CONFIG_MAGIC_KEY) != 0 || strcmp(value, CONFIG_VERSION) != 0) {
                set_error("config: not a jkrun-init version %s config", CONFIG_VERSION);
                return -1;
            }
            first = 0;
            continue;
        }
        int rc;
        if (strcmp(key, "exec") == 0)
            rc = set_once(&cfg->exec, key, value);
        else if (strcmp(key, "arg") == 0)
            rc = (strlist_add(&cfg->args, value), 0);
        else if (strcmp(key, "env") == 0)
            rc = check_env(value) == 0 ? (strlist_add(&cfg->env, value), 0) : -1;
        else if (strcmp(key, "workdir") == 0)
            rc = set_once(&cfg->workdir, key, value);
        else if (strcmp(key, "hostname") == 0)
            rc = set_once(&cfg->hostname, key, value);
        else if (strcmp(key, "rlimit") == 0)
            rc = add_rlimit(cfg, value);
        else if (strcmp(key, "mount") == 0)
            rc = add_mount(cfg, value);
        else if (strcmp(key, "root-disk") == 0)
            rc = set_once(&root, key, value) == 0 ? set_root_disk(cfg, value) : -1;
        else if (strcmp(key, "tty") == 0)
            rc = set_once(&tty, key, value);
        else if (strcmp(key, "stdio") == 0)
            rc = set_once(&stdio, key, value);
        else if (strcmp(key, "dns-server") == 0)
            rc = add_dns_server(cfg, value);
        else if (strcmp(key, "dns-search") == 0)
            rc = check_dns_words(key, value) == 0 ? set_once(&cfg->dns_search, key, value) : -1;
        else if (strcmp(key, "dns-options") == 0)
            rc = check_dns_words(key, value) == 0 ? set_once(&cfg->dns_options, key, value) : -1;
        else if (strcmp(key, "dhcp") == 0)
            rc = add_dhcp(cfg, value);
        else if (strcmp(key, "ipv4") == 0)
            rc = add_ipv4(cfg, value);
        else {
            set_error("config: unknown key '%s'", key);
            rc = -1;
        }
        if (rc != 0)
            return -1;
    }
    if (first) {
        set_error("config: empty file");
        return -1;
    }
    if (cfg->exec == NULL || cfg->exec[0] == '\0') {
        set_error("config: no 'exec' record");
        return -1;
    }
    if ((cfg->dns_search != NULL || cfg->dns_options != NULL) && cfg->dns_servers.len == 0) {
        set_error("config: dns-search or dns-options without a dns-server");
        return -1;
    }
    if (tty != NULL) {
        if (strcmp(tty, "0") != 0 && strcmp(tty, "1") != 0) {
            set_error("config: tty '%s': expected 0 or 1", tty);
            return -1;
        }
        cfg->tty = tty[0] == '1';
    }
    if (stdio != NULL) {
        if (strcmp(stdio, "ports") == 0)
            cfg->stdio_ports = 1;
        else if (strcmp(stdio, "console") != 0) {
            set_error("config: stdio '%s': expected console or ports", stdio);
            return -1;
        }
    }
    return 0;
}

/* Removes one pair of surrounding double quotes, as the kernel may leave them. */
static char *unquote(char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s[n - 1] = '\0';
        return s + 1;
    }
    return s;
}

int config_from_krun_env(int argc, char **argv, char **envp, struct config *cfg)
{
    char *block_dev = NULL, *block_fs = "", *block_opts = "";
    char *home = NULL, *term = NULL;
    for (char **e = envp; *e != NULL; e++) {
        char *item = *e;
        char *eq = strchr(item, '=');
        if (eq == NULL)
            continue;
        size_t klen = (size_t)(eq - item);
        char *val = eq + 1;
#define IS(name) (klen == sizeof(name) - 1 && strncmp(item, name, klen) == 0)
        if (IS("KRUN_INIT"))
            cfg->exec = val;
        else if (IS("KRUN_WORKDIR"))
            cfg->workdir = val;
        else if (IS("HOSTNAME"))
            cfg->hostname = val;
        else if (IS("KRUN_HOME"))
            home = val;
        else if (IS("KRUN_TERM"))
            term = val;
        else if (IS("KRUN_BLOCK_ROOT_DEVICE"))
            block_dev = val;
        else if (IS("KRUN_BLOCK_ROOT_FSTYPE"))
            block_fs = val;
        else if (IS("KRUN_BLOCK_ROOT_OPTIONS"))
            block_opts = val;
        else if (IS("KRUN_DHCP")) {
            if (strcmp(val, "1") == 0)
                strlist_add(&cfg->dhcp, "eth0");
        }
        else if (IS("KRUN_RLIMITS")) {
            char *list = unquote(val), *save = NULL;
            for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
                if (add_rlimit(cfg, tok) != 0)
                    return -1;
        } else if (strncmp(item, "KRUN_", 5) == 0 || strncmp(item, "JKRUN_INIT_", 11) == 0)
            continue;
        else
            strlist_add(&cfg->env, item);
#undef IS
    }
    /* libkrun: HOME and TERM are overwritten by KRUN_HOME/KRUN_TERM when given. */
    if (home != NULL) {
        char *s = xrealloc(NULL, strlen(home) + 6);
        sprintf(s, "HOME=%s", home);
        strlist_add(&cfg->env, s);
    }
    if (term != NULL) {
        char *s = xrealloc(NULL, strlen(term) + 6);
        sprintf(s, "TERM=%s", term);
        strlist_add(&cfg->env, s);
    }
    int first_arg = 1;
    if (cfg->exec == NULL || cfg->exec[0] == '\0') {
        /* No KRUN_INIT: the first argument is the program, else /bin/sh (libkrun's Rust init). */
        if (argc > 1) {
            cfg->exec = argv[1];
            first_arg = 2;
        } else
            cfg->exec = "/bin/sh";
    }
    for (int i = first_arg; i < argc; i++)
        strlist_add(&cfg->args, argv[i]);
    if (block_dev != NULL && block_dev[0] != '\0') {
        cfg->root_device = block_dev;
        cfg->root_fstype = block_fs;
        cfg->root_options = block_opts;
    }
    return 0;
}
