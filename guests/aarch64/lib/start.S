/* start.S: an arm64 Image header (Documentation/arch/arm64/booting.rst), then the boot CPU's entry: X0 holds the
 * device tree's address; set a stack, clear BSS, run guest_main(fdt) and exit with its status. Secondary CPUs
 * enter at secondary_entry (the PSCI CPU_ON entry point) with their index in X0 as the context id. */
    .section .text.start, "ax"
    .globl _start
_start:
    b       boot                    /* code0 */
    .long   0                       /* code1 */
    .quad   0                       /* text_offset: at the 2 MiB-aligned RAM base */
    .quad   __image_end - _start    /* image_size, BSS included */
    .quad   0xA                     /* flags: little-endian, 4 KiB pages, placed anywhere */
    .quad   0, 0, 0                 /* res2..res4 */
    .ascii  "ARM\x64"               /* magic */
    .long   0                       /* res5 */
boot:
    mov     x19, x0
    ldr     x1, =__stack_top
    mov     sp, x1
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
1:  cmp     x1, x2
    b.hs    2f
    str     xzr, [x1], #8
    b       1b
2:  mov     x0, x19
    bl      guest_main
    bl      exit_status
3:  wfi
    b       3b

    .globl secondary_entry
secondary_entry:                    /* x0 = the CPU's index (CPU_ON's context id) */
    mov     x19, x0
    ldr     x1, =__ap_stacks
    add     x2, x0, #1
    lsl     x2, x2, #14             /* 16 KiB each */
    add     x1, x1, x2
    mov     sp, x1
    mov     x0, x19
    bl      ap_main
4:  wfi
    b       4b
