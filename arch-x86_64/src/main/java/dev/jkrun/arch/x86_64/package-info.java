/**
 * The x86_64 64-bit boot protocol as libkrun does it (notes §1.3–§1.10): the guest physical memory map, RAM
 * sizing, e820, zero page, command line, boot GDT and identity page tables, the BSP's initial registers, per-vCPU
 * CPUID and the MP table. Everything here is a pure function writing into a {@link dev.jkrun.memory.GuestMemory} or
 * returning values; nothing touches KVM.
 */
package dev.jkrun.arch.x86_64;
