#include <stdarg.h>
#include "io.h"
#include "report.h"
#include "format.h"

/* One lock so that lines printed by several vCPUs do not interleave. printf_lite takes it
 * for the whole line; putc/puts are single-vCPU helpers. */
static volatile int print_lock;
static void lock(void) { while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE)) pause(); }
static void unlock(void) { __atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE); }

void putc(char c) { outb(REPORT_PORT, (uint8_t)c); }
void printf_lite(const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    lock();
    format_lite(fmt, ap);
    unlock();
    va_end(ap);
}

void report_ok(const char *name) { printf_lite("OK %s\n", name); }

void exit_status(uint32_t code) {
    for (;;) { outl(EXIT_PORT, code); cli(); hlt(); }
}

void fail(const char *msg) {
    printf_lite("FAIL: %s\n", msg);
    exit_status(1);
}
