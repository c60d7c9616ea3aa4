/* AP trampoline, copied to TRAMP (0x10000) and entered by SIPI vector 0x10 in real mode
 * (CS = 0x1000, IP = 0). Real mode -> protected mode -> long mode on the BSP's page tables,
 * then jump to tr_entry with RSP = tr_stack. The BSP patches tr_cr3/tr_stack/tr_entry. */
#define TRAMP 0x10000
#define OFF(x) ((x) - trampoline_start)
    .section .rodata
    .balign 16
    .globl trampoline_start, trampoline_end, tr_cr3, tr_stack, tr_entry
    .code16
trampoline_start:
    cli
    cld
    mov     %cs, %ax
    mov     %ax, %ds
    lgdtl   OFF(tr_gdtr)
    mov     %cr0, %eax
    or      $1, %eax
    mov     %eax, %cr0
    ljmpl   $0x18, $(TRAMP + OFF(tr_pm32))

    .code32
tr_pm32:
    mov     $0x10, %ax
    mov     %ax, %ds
    mov     %ax, %es
    mov     %ax, %ss
    mov     %cr4, %eax
    or      $0x20, %eax                 /* PAE */
    mov     %eax, %cr4
    mov     TRAMP + OFF(tr_cr3), %eax
    mov     %eax, %cr3
    mov     $0xC0000080, %ecx           /* EFER.LME */
    rdmsr
    or      $0x100, %eax
    wrmsr
    mov     %cr0, %eax
    or      $0x80000001, %eax           /* PG | PE */
    mov     %eax, %cr0
    ljmp    $0x08, $(TRAMP + OFF(tr_lm64))

    .code64
tr_lm64:
    mov     $0x10, %ax
    mov     %ax, %ds
    mov     %ax, %es
    mov     %ax, %ss
    mov     %ax, %fs
    mov     %ax, %gs
    mov     TRAMP + OFF(tr_stack), %rsp
    mov     TRAMP + OFF(tr_entry), %rax
    xor     %ebp, %ebp
    jmp     *%rax

    .balign 8
tr_gdt:
    .quad   0
    .quad   0x00AF9A000000FFFF          /* 0x08: 64-bit code */
    .quad   0x00CF92000000FFFF          /* 0x10: data */
    .quad   0x00CF9A000000FFFF          /* 0x18: 32-bit code */
tr_gdtr:
    .word   31
    .long   TRAMP + OFF(tr_gdt)
    .balign 8
tr_cr3:   .quad 0
tr_stack: .quad 0
tr_entry: .quad 0
trampoline_end:

    .section .note.GNU-stack, "", @progbits
