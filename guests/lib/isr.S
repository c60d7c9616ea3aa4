/* 256 interrupt stubs: push a dummy error code where the CPU pushes none, push the vector,
 * save the GPRs and call isr_dispatch(struct irq_frame *). */
    .code64
    .text
.macro STUB v
    .balign 16
isr_\v:
    .if (\v == 8) || (\v >= 10 && \v <= 14) || (\v == 17) || (\v == 21) || (\v == 29) || (\v == 30)
    .else
    pushq   $0
    .endif
    pushq   $\v
    jmp     isr_common
.endm

    .globl isr_stubs
    .balign 16
isr_stubs:
    .altmacro
    .set i, 0
    .rept 256
    STUB %i
    .set i, i + 1
    .endr

isr_common:
    push %rax; push %rbx; push %rcx; push %rdx; push %rsi; push %rdi; push %rbp
    push %r8; push %r9; push %r10; push %r11; push %r12; push %r13; push %r14; push %r15
    mov     %rsp, %rdi
    mov     %rsp, %rbx
    and     $-16, %rsp
    call    isr_dispatch
    mov     %rbx, %rsp
    pop %r15; pop %r14; pop %r13; pop %r12; pop %r11; pop %r10; pop %r9; pop %r8
    pop %rbp; pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rbx; pop %rax
    add     $16, %rsp
    iretq

    .section .rodata
    .balign 8
    .globl isr_table
isr_table:
    .set i, 0
    .rept 256
    .quad isr_stubs + 16 * i
    .set i, i + 1
    .endr

    .section .note.GNU-stack, "", @progbits
