/* report.h — the report channel to the host.
 *   text:        outb to port 0x3F8, one byte per OUT (the VMM's debug sink collects lines)
 *   exit status: outl(0xF4, code); the VMM stops the VM and reports `code` */
#ifndef GUEST_REPORT_H
#define GUEST_REPORT_H
#include <stdint.h>

#define REPORT_PORT 0x3F8
#define EXIT_PORT   0xF4

void putc(char c);
void puts(const char *s);            /* no newline appended */
void print_hex(uint64_t v);          /* 0x... */
void print_dec(int64_t v);
void printf_lite(const char *fmt, ...); /* %s %d %u %x %lx %lu %ld %c %% */
void report_ok(const char *name);    /* "OK name\n" */
__attribute__((noreturn)) void fail(const char *msg);  /* "FAIL: msg\n", exit 1 */
__attribute__((noreturn)) void exit_status(uint32_t code);

#endif
