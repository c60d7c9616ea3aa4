#include <stdarg.h>
#include "guest.h"
#include "format.h"

/* ---- report: bytes to the first UART's data register (jkrun's debug port there without a UART) ---- */
void putc(char c) { mmio_write8(REPORT_UART, (uint8_t)c); }
void printf_lite(const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    format_lite(fmt, ap);
    va_end(ap);
}
void exit_status(uint32_t code) {
    for (;;) { mmio_write32(TEST_EXIT, code); __asm__ volatile("wfi"); }
}
void fail(const char *msg) { printf_lite("FAIL: %s\n", msg); exit_status(1); }

/* ---- PSCI ---- */
int64_t psci_call(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3) {
    register uint64_t x0 __asm__("x0") = fn, x1 __asm__("x1") = a1, x2 __asm__("x2") = a2, x3 __asm__("x3") = a3;
    __asm__ volatile("hvc #0" : "+r"(x0) : "r"(x1), "r"(x2), "r"(x3) : "memory");
    return (int64_t)x0;
}

/* ---- libc: ../../common/str.c ---- */

/* ---- device tree ---- */
uint32_t be32(const void *p) {
    const uint8_t *b = p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}
uint64_t be64(const void *p) { return (uint64_t)be32(p) << 32 | be32((const uint8_t *)p + 4); }

static const uint8_t *st_base, *str_base;
static uint32_t st_size, str_size;

int fdt_check(const void *fdt) {
    const uint8_t *h = fdt;
    if (be32(h) != 0xd00dfeed) return -1;
    uint32_t total = be32(h + 4), off_st = be32(h + 8), off_str = be32(h + 12), version = be32(h + 20);
    str_size = be32(h + 32); st_size = be32(h + 36);
    if (version < 17 || off_st + st_size > total || off_str + str_size > total || total > 0x200000) return -2;
    st_base = h + off_st; str_base = h + off_str;
    return 0;
}

/* Walks the structure block; for the node at `path` finds property `name` (if name) or lists children. */
static const void *walk(const char *path, const char *name, uint32_t *len, const char *prefix,
                        void (*f)(const void *, const char *, void *), void *arg, const void *fdt) {
    uint32_t at = 0;
    int depth = 0, matched = 0;             /* matched: how many path components the open nodes match */
    const char *comp[8]; size_t clen[8]; int ncomp = 0;
    for (const char *p = path; *p && ncomp < 8;) {
        while (*p == '/') p++;
        if (!*p) break;
        comp[ncomp] = p;
        while (*p && *p != '/') p++;
        clen[ncomp] = p - comp[ncomp];
        ncomp++;
    }
    while (at + 4 <= st_size) {
        uint32_t tok = be32(st_base + at); at += 4;
        if (tok == 1) {                                     /* BEGIN_NODE */
            const char *n = (const char *)st_base + at;
            size_t l = strlen(n);
            at += (l + 4) & ~3u;
            depth++;
            if (depth == 1) { matched = 0; continue; }      /* the root */
            if (matched == depth - 2 && depth - 2 < ncomp && l == clen[depth - 2] && !strncmp(n, comp[depth - 2], l))
                matched = depth - 1;
            else if (f && matched == ncomp && depth - 2 == ncomp && !strncmp(n, prefix, strlen(prefix)))
                f(fdt, n, arg);
        } else if (tok == 3) {                              /* PROP */
            uint32_t l = be32(st_base + at), nameoff = be32(st_base + at + 4);
            at += 8;
            if (name && matched == ncomp && depth - 1 == ncomp && nameoff < str_size
                && !strncmp((const char *)str_base + nameoff, name, strlen(name) + 1)) {
                if (len) *len = l;
                return st_base + at;
            }
            at += (l + 3) & ~3u;
        } else if (tok == 2) {                              /* END_NODE */
            if (matched == depth - 1 && matched > 0) matched--;
            depth--;
        } else if (tok == 9) {
            break;
        }
    }
    return 0;
}

const void *fdt_prop(const void *fdt, const char *path, const char *name, uint32_t *len) {
    if (fdt_check(fdt)) return 0;
    return walk(path, name, len, 0, 0, 0, fdt);
}

const void *fdt_child_prop(const void *fdt, const char *node, const char *name, uint32_t *len) {
    char path[64] = "/";
    size_t n = strlen(node);
    if (n > sizeof path - 2) return 0;
    memcpy(path + 1, node, n + 1);
    return fdt_prop(fdt, path, name, len);
}

int fdt_children(const void *fdt, const char *path, const char *prefix,
                 void (*f)(const void *, const char *, void *), void *arg) {
    if (fdt_check(fdt)) return -1;
    walk(path, 0, 0, prefix, f, arg, fdt);
    return 0;
}

/* ---- command line ---- */
static const char *bootargs = "";
void cmdline_init(const void *fdt) {
    uint32_t len;
    const char *b = fdt_prop(fdt, "/chosen", "bootargs", &len);
    if (b && len > 0 && b[len - 1] == 0) bootargs = b;
}
const char *cmdline(void) { return bootargs; }
uint64_t cmdline_u64(const char *key, uint64_t dflt) {
    size_t n = strlen(key);
    for (const char *p = bootargs; *p; p++)
        if ((p == bootargs || p[-1] == ' ') && !strncmp(p, key, n)) return parse_u64(p + n, 0);
    return dflt;
}

/* guests that start no secondary CPUs need no ap_main of their own */
__attribute__((weak)) void ap_main(uint64_t index) { (void)index; for (;;) __asm__ volatile("wfi"); }
