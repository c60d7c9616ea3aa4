#ifndef GUEST_FORMAT_H
#define GUEST_FORMAT_H
#include <stdarg.h>
#include <stdint.h>
void puts(const char *s);            /* no newline appended */
void print_hex(uint64_t v);          /* 0x... */
void print_dec(int64_t v);
void format_lite(const char *fmt, va_list ap);   /* printf_lite's body, without a lock */
#endif
