/* 64-bit entry. The VMM starts us in long mode with RSI = zero page (0x7000). */
    .section .text.start, "ax"
    .code64
    .globl _start
_start:
    cli
    mov     %rsi, %r12                  /* keep the zero page pointer */
    mov     %rsp, boot_entry_rsp(%rip)  /* for boot_check: what the VMM handed us */
    mov     %rsi, boot_entry_rsi(%rip)
    lea     boot_stack_top(%rip), %rsp
    xor     %ebp, %ebp
    lea     __bss_start(%rip), %rdi     /* zero .bss (8-byte aligned; the stack is in it, unused yet) */
    lea     __bss_end(%rip), %rcx
    sub     %rdi, %rcx
    shr     $3, %rcx
    xor     %eax, %eax
    rep stosq
    mov     %r12, %rdi
    call    guest_main
    mov     %eax, %edi
    call    exit_status
1:  cli
    hlt
    jmp     1b

    .section .data
    .balign 8
    .globl  boot_entry_rsp, boot_entry_rsi
boot_entry_rsp: .quad 0
boot_entry_rsi: .quad 0

    .section .bss
    .balign 16
boot_stack:
    .skip   16384
    .globl  boot_stack_top
boot_stack_top:

    .section .note.GNU-stack, "", @progbits
