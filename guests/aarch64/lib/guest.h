/* guest.h — the jkrun aarch64 test-guest library. Every guest defines
 *     int guest_main(const void *fdt);
 * and returns its exit status (or calls exit_status / fail). The MMU stays off: every data access is to Device
 * memory, so the library builds with -mstrict-align and uses no exclusive or atomic instructions. */
#ifndef GUEST_H
#define GUEST_H
#include <stdint.h>
#include <stddef.h>

/* jkrun's aarch64 layout (arch-aarch64's Layout) */
#define TEST_EXIT   0x0A000000UL
#define REPORT_UART 0x0A001000UL
#define RAM_START   0x80000000UL

int guest_main(const void *fdt);
void ap_main(uint64_t index);               /* a secondary CPU's C entry (guests that start CPUs define it) */
extern char secondary_entry[];

static inline void mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline uint32_t mmio_read32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline uint8_t mmio_read8(uint64_t a) { return *(volatile uint8_t *)a; }

/* ---- report ---- */
void putc(char c);
void puts(const char *s);
void printf_lite(const char *fmt, ...);
void exit_status(uint32_t code) __attribute__((noreturn));
void fail(const char *msg) __attribute__((noreturn));

/* ---- device tree (read-only, bounds-checked against its own header) ---- */
int fdt_check(const void *fdt);                      /* 0 = a valid v17 blob */
/* the property `name` of the node at `path` ("/chosen", "/cpus/cpu@1"); its length in *len; 0 if absent */
const void *fdt_prop(const void *fdt, const char *path, const char *name, uint32_t *len);
/* the property `name` of the root's child node `node` ("virtio_mmio@a010000"); 0 if absent or the name too long */
const void *fdt_child_prop(const void *fdt, const char *node, const char *name, uint32_t *len);
/* calls f for each node directly below `path` whose name starts with `prefix` */
int fdt_children(const void *fdt, const char *path, const char *prefix,
                 void (*f)(const void *fdt, const char *name, void *arg), void *arg);
uint32_t be32(const void *p);
uint64_t be64(const void *p);

/* ---- command line (the device tree's /chosen/bootargs) ---- */
void cmdline_init(const void *fdt);
const char *cmdline(void);
uint64_t cmdline_u64(const char *key, uint64_t dflt);

/* ---- PSCI 0.2 over HVC ---- */
int64_t psci_call(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3);
#define PSCI_VERSION      0x84000000UL
#define PSCI_CPU_ON       0xC4000003UL
#define PSCI_SYSTEM_OFF   0x84000008UL
#define PSCI_SYSTEM_RESET 0x84000009UL

/* ---- small libc ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
uint64_t parse_u64(const char *s, const char **end);
#endif
