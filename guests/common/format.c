/* format.c — printf_lite's formatting for every test guest: %s %c %d %u %x (with l) %p %%, through the
 * architecture's putc (x86: the debug port; aarch64: the first UART's data register). */
#include <stdarg.h>
#include <stdint.h>
#include "format.h"

void putc(char c);

void puts(const char *s) { while (*s) putc(*s++); }
static void put_udec(uint64_t v) {
    char b[24]; int i = 0;
    do { b[i++] = '0' + v % 10; v /= 10; } while (v);
    while (i) putc(b[--i]);
}
static void put_hex(uint64_t v) {
    char b[16]; int i = 0;
    do { b[i++] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    while (i) putc(b[--i]);
}
void print_hex(uint64_t v) { putc('0'); putc('x'); put_hex(v); }
void print_dec(int64_t v) { if (v < 0) { putc('-'); v = -v; } put_udec((uint64_t)v); }

void format_lite(const char *fmt, va_list ap) {
    for (; *fmt; fmt++) {
        if (*fmt != '%') { putc(*fmt); continue; }
        int l = 0;
        while (fmt[1] == 'l') { l = 1; fmt++; }
        switch (*++fmt) {
        case 's': { const char *s = va_arg(ap, const char *); puts(s ? s : "(null)"); break; }
        case 'c': putc((char)va_arg(ap, int)); break;
        case 'd': print_dec(l ? va_arg(ap, int64_t) : va_arg(ap, int)); break;
        case 'u': put_udec(l ? va_arg(ap, uint64_t) : va_arg(ap, unsigned)); break;
        case 'x': put_hex(l ? va_arg(ap, uint64_t) : va_arg(ap, unsigned)); break;
        case 'p': print_hex((uint64_t)va_arg(ap, void *)); break;
        case '%': putc('%'); break;
        case 0: fmt--; break;
        default: putc('%'); putc(*fmt);
        }
    }
}
