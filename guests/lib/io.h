/* io.h — port and MMIO access, CPU control. Freestanding, header-only. */
#ifndef GUEST_IO_H
#define GUEST_IO_H
#include <stdint.h>
#include <stddef.h>

#define barrier() __asm__ __volatile__("" ::: "memory")

static inline void outb(uint16_t port, uint8_t v) { __asm__ __volatile__("outb %0, %1" :: "a"(v), "Nd"(port) : "memory"); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ __volatile__("outw %0, %1" :: "a"(v), "Nd"(port) : "memory"); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ __volatile__("outl %0, %1" :: "a"(v), "Nd"(port) : "memory"); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ __volatile__("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory"); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ __volatile__("inw %1, %0" : "=a"(v) : "Nd"(port) : "memory"); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ __volatile__("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory"); return v; }

static inline uint32_t readl(uintptr_t a) { barrier(); uint32_t v = *(volatile uint32_t *)a; barrier(); return v; }
static inline void writel(uintptr_t a, uint32_t v) { barrier(); *(volatile uint32_t *)a = v; barrier(); }
static inline uint64_t readq(uintptr_t a) { barrier(); uint64_t v = *(volatile uint64_t *)a; barrier(); return v; }
static inline void writeq(uintptr_t a, uint64_t v) { barrier(); *(volatile uint64_t *)a = v; barrier(); }

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d) {
    __asm__ __volatile__("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}
static inline uint64_t rdmsr(uint32_t msr) { uint32_t lo, hi; __asm__ __volatile__("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr)); return ((uint64_t)hi << 32) | lo; }
static inline void wrmsr(uint32_t msr, uint64_t v) { __asm__ __volatile__("wrmsr" :: "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory"); }
static inline uint64_t rdtsc(void) { uint32_t lo, hi; __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi)); return ((uint64_t)hi << 32) | lo; }

static inline void cli(void) { __asm__ __volatile__("cli" ::: "memory"); }
static inline void sti(void) { __asm__ __volatile__("sti" ::: "memory"); }
static inline void hlt(void) { __asm__ __volatile__("hlt" ::: "memory"); }
static inline void sti_hlt(void) { __asm__ __volatile__("sti; hlt" ::: "memory"); } /* atomic: STI shadow */
static inline void pause(void) { __asm__ __volatile__("pause" ::: "memory"); }

static inline uint64_t read_cr0(void) { uint64_t v; __asm__ __volatile__("mov %%cr0, %0" : "=r"(v)); return v; }
static inline uint64_t read_cr3(void) { uint64_t v; __asm__ __volatile__("mov %%cr3, %0" : "=r"(v)); return v; }
static inline uint64_t read_cr4(void) { uint64_t v; __asm__ __volatile__("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void write_cr3(uint64_t v) { __asm__ __volatile__("mov %0, %%cr3" :: "r"(v) : "memory"); }

#endif
