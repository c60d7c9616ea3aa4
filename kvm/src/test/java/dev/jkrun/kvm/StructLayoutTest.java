package dev.jkrun.kvm;

import dev.jkrun.hypervisor.VcpuExit;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every struct size, offset and ioctl number this module hard-codes, checked against the kernel headers by
 * compiling a C program that prints the real values (skipped only when gcc is absent).
 */
class StructLayoutTest {

    /** C expression -> the Java constant that must equal it. */
    private static Map<String, Long> expectations() {
        Map<String, Long> m = new LinkedHashMap<>();
        // struct kvm_regs
        m.put("sizeof(struct kvm_regs)", (long) Regs.SIZE);
        m.put("offsetof(struct kvm_regs, rax)", (long) RegsLayout.RAX);
        m.put("offsetof(struct kvm_regs, rbp)", (long) RegsLayout.RBP);
        m.put("offsetof(struct kvm_regs, r8)", (long) RegsLayout.R8);
        m.put("offsetof(struct kvm_regs, r15)", (long) RegsLayout.R15);
        m.put("offsetof(struct kvm_regs, rip)", (long) RegsLayout.RIP);
        m.put("offsetof(struct kvm_regs, rflags)", (long) RegsLayout.RFLAGS);
        // struct kvm_segment, kvm_dtable, kvm_sregs
        m.put("sizeof(struct kvm_segment)", (long) Segment.SIZE);
        m.put("offsetof(struct kvm_segment, limit)", (long) SregsLayout.SEG_LIMIT);
        m.put("offsetof(struct kvm_segment, selector)", (long) SregsLayout.SEG_SELECTOR);
        m.put("offsetof(struct kvm_segment, type)", (long) SregsLayout.SEG_TYPE);
        m.put("offsetof(struct kvm_segment, present)", (long) SregsLayout.SEG_PRESENT);
        m.put("offsetof(struct kvm_segment, dpl)", (long) SregsLayout.SEG_DPL);
        m.put("offsetof(struct kvm_segment, db)", (long) SregsLayout.SEG_DB);
        m.put("offsetof(struct kvm_segment, s)", (long) SregsLayout.SEG_S);
        m.put("offsetof(struct kvm_segment, l)", (long) SregsLayout.SEG_L);
        m.put("offsetof(struct kvm_segment, g)", (long) SregsLayout.SEG_G);
        m.put("offsetof(struct kvm_segment, avl)", (long) SregsLayout.SEG_AVL);
        m.put("offsetof(struct kvm_segment, unusable)", (long) SregsLayout.SEG_UNUSABLE);
        m.put("sizeof(struct kvm_dtable)", (long) DTable.SIZE);
        m.put("offsetof(struct kvm_dtable, limit)", (long) SregsLayout.DT_LIMIT);
        m.put("sizeof(struct kvm_sregs)", (long) Sregs.SIZE);
        m.put("offsetof(struct kvm_sregs, cs)", (long) SregsLayout.CS);
        m.put("offsetof(struct kvm_sregs, ds)", (long) SregsLayout.DS);
        m.put("offsetof(struct kvm_sregs, es)", (long) SregsLayout.ES);
        m.put("offsetof(struct kvm_sregs, fs)", (long) SregsLayout.FS);
        m.put("offsetof(struct kvm_sregs, gs)", (long) SregsLayout.GS);
        m.put("offsetof(struct kvm_sregs, ss)", (long) SregsLayout.SS);
        m.put("offsetof(struct kvm_sregs, tr)", (long) SregsLayout.TR);
        m.put("offsetof(struct kvm_sregs, ldt)", (long) SregsLayout.LDT);
        m.put("offsetof(struct kvm_sregs, gdt)", (long) SregsLayout.GDT);
        m.put("offsetof(struct kvm_sregs, idt)", (long) SregsLayout.IDT);
        m.put("offsetof(struct kvm_sregs, cr0)", (long) SregsLayout.CR0);
        m.put("offsetof(struct kvm_sregs, cr2)", (long) SregsLayout.CR2);
        m.put("offsetof(struct kvm_sregs, cr3)", (long) SregsLayout.CR3);
        m.put("offsetof(struct kvm_sregs, cr4)", (long) SregsLayout.CR4);
        m.put("offsetof(struct kvm_sregs, cr8)", (long) SregsLayout.CR8);
        m.put("offsetof(struct kvm_sregs, efer)", (long) SregsLayout.EFER);
        m.put("offsetof(struct kvm_sregs, apic_base)", (long) SregsLayout.APIC_BASE);
        m.put("offsetof(struct kvm_sregs, interrupt_bitmap)", (long) SregsLayout.INTERRUPT_BITMAP);
        m.put("sizeof(((struct kvm_sregs*)0)->interrupt_bitmap) / 8", 4L);
        // struct kvm_fpu
        m.put("sizeof(struct kvm_fpu)", (long) Fpu.SIZE);
        m.put("offsetof(struct kvm_fpu, fcw)", (long) FpuLayout.FCW);
        m.put("offsetof(struct kvm_fpu, fsw)", (long) FpuLayout.FSW);
        m.put("offsetof(struct kvm_fpu, ftwx)", (long) FpuLayout.FTWX);
        m.put("offsetof(struct kvm_fpu, last_opcode)", (long) FpuLayout.LAST_OPCODE);
        m.put("offsetof(struct kvm_fpu, last_ip)", (long) FpuLayout.LAST_IP);
        m.put("offsetof(struct kvm_fpu, last_dp)", (long) FpuLayout.LAST_DP);
        m.put("offsetof(struct kvm_fpu, xmm)", (long) FpuLayout.XMM);
        m.put("offsetof(struct kvm_fpu, mxcsr)", (long) FpuLayout.MXCSR);
        // CPUID, MSRs, LAPIC
        m.put("sizeof(struct kvm_cpuid_entry2)", (long) CpuidEntry.SIZE);
        m.put("offsetof(struct kvm_cpuid_entry2, index)", (long) CpuidEntryLayout.INDEX);
        m.put("offsetof(struct kvm_cpuid_entry2, flags)", (long) CpuidEntryLayout.FLAGS);
        m.put("offsetof(struct kvm_cpuid_entry2, eax)", (long) CpuidEntryLayout.EAX);
        m.put("offsetof(struct kvm_cpuid_entry2, ebx)", (long) CpuidEntryLayout.EBX);
        m.put("offsetof(struct kvm_cpuid_entry2, ecx)", (long) CpuidEntryLayout.ECX);
        m.put("offsetof(struct kvm_cpuid_entry2, edx)", (long) CpuidEntryLayout.EDX);
        m.put("sizeof(struct kvm_cpuid2)", (long) ArgLayouts.CPUID2_HEADER);
        m.put("offsetof(struct kvm_cpuid2, entries)", (long) ArgLayouts.CPUID2_ENTRIES);
        m.put("KVM_CPUID_FLAG_SIGNIFCANT_INDEX", (long) CpuidEntry.FLAG_SIGNIFICANT_INDEX);
        m.put("sizeof(struct kvm_msr_entry)", (long) MsrEntry.SIZE);
        m.put("offsetof(struct kvm_msr_entry, reserved)", (long) MsrEntryLayout.RESERVED);
        m.put("offsetof(struct kvm_msr_entry, data)", (long) MsrEntryLayout.DATA);
        m.put("sizeof(struct kvm_msrs)", (long) ArgLayouts.MSRS_HEADER);
        m.put("offsetof(struct kvm_msrs, entries)", (long) ArgLayouts.MSRS_ENTRIES);
        m.put("sizeof(struct kvm_msr_list)", (long) ArgLayouts.MSR_LIST_SIZE);
        m.put("offsetof(struct kvm_msr_list, indices)", (long) ArgLayouts.ML_INDICES);
        m.put("sizeof(struct kvm_lapic_state)", (long) LapicState.SIZE);
        m.put("sizeof(struct kvm_mp_state)", (long) ArgLayouts.MP_STATE_SIZE);
        // VM argument structs
        m.put("sizeof(struct kvm_userspace_memory_region)", (long) ArgLayouts.MEMORY_REGION_SIZE);
        m.put("offsetof(struct kvm_userspace_memory_region, flags)", (long) ArgLayouts.MR_FLAGS);
        m.put("offsetof(struct kvm_userspace_memory_region, guest_phys_addr)", (long) ArgLayouts.MR_GUEST_PHYS_ADDR);
        m.put("offsetof(struct kvm_userspace_memory_region, memory_size)", (long) ArgLayouts.MR_MEMORY_SIZE);
        m.put("offsetof(struct kvm_userspace_memory_region, userspace_addr)", (long) ArgLayouts.MR_USERSPACE_ADDR);
        m.put("sizeof(struct kvm_irq_level)", (long) ArgLayouts.IRQ_LEVEL_SIZE);
        m.put("offsetof(struct kvm_irq_level, level)", (long) ArgLayouts.IL_LEVEL);
        m.put("sizeof(struct kvm_irqfd)", (long) ArgLayouts.IRQFD_SIZE);
        m.put("offsetof(struct kvm_irqfd, gsi)", (long) ArgLayouts.IRQFD_GSI);
        m.put("offsetof(struct kvm_irqfd, flags)", (long) ArgLayouts.IRQFD_FLAGS);
        m.put("offsetof(struct kvm_irqfd, resamplefd)", (long) ArgLayouts.IRQFD_RESAMPLEFD);
        m.put("KVM_IRQFD_FLAG_DEASSIGN", (long) ArgLayouts.KVM_IRQFD_FLAG_DEASSIGN);
        m.put("sizeof(struct kvm_pit_config)", (long) ArgLayouts.PIT_CONFIG_SIZE);
        m.put("KVM_PIT_SPEAKER_DUMMY", (long) ArgLayouts.KVM_PIT_SPEAKER_DUMMY);
        m.put("sizeof(struct kvm_ioeventfd)", (long) ArgLayouts.IOEVENTFD_SIZE);
        m.put("offsetof(struct kvm_ioeventfd, addr)", (long) ArgLayouts.IOE_ADDR);
        m.put("offsetof(struct kvm_ioeventfd, len)", (long) ArgLayouts.IOE_LEN);
        m.put("offsetof(struct kvm_ioeventfd, fd)", (long) ArgLayouts.IOE_FD);
        m.put("offsetof(struct kvm_ioeventfd, flags)", (long) ArgLayouts.IOE_FLAGS);
        m.put("KVM_IOEVENTFD_FLAG_DATAMATCH", (long) ArgLayouts.KVM_IOEVENTFD_FLAG_DATAMATCH);
        m.put("KVM_IOEVENTFD_FLAG_PIO", (long) ArgLayouts.KVM_IOEVENTFD_FLAG_PIO);
        m.put("KVM_IOEVENTFD_FLAG_DEASSIGN", (long) ArgLayouts.KVM_IOEVENTFD_FLAG_DEASSIGN);
        m.put("sizeof(struct kvm_enable_cap)", (long) ArgLayouts.ENABLE_CAP_SIZE);
        m.put("offsetof(struct kvm_enable_cap, flags)", (long) ArgLayouts.EC_FLAGS);
        m.put("offsetof(struct kvm_enable_cap, args)", (long) ArgLayouts.EC_ARGS);
        m.put("sizeof(((struct kvm_enable_cap*)0)->args) / 8", (long) ArgLayouts.EC_MAX_ARGS);
        m.put("sizeof(struct kvm_irq_routing)", (long) ArgLayouts.IRQ_ROUTING_HEADER);
        m.put("offsetof(struct kvm_irq_routing, entries)", (long) ArgLayouts.IRT_ENTRIES);
        m.put("sizeof(struct kvm_irq_routing_entry)", (long) ArgLayouts.IRQ_ROUTING_ENTRY_SIZE);
        m.put("offsetof(struct kvm_irq_routing_entry, type)", (long) ArgLayouts.IRE_TYPE);
        m.put("offsetof(struct kvm_irq_routing_entry, u.msi.address_lo)", (long) ArgLayouts.IRE_MSI_ADDRESS_LO);
        m.put("offsetof(struct kvm_irq_routing_entry, u.msi.address_hi)", (long) ArgLayouts.IRE_MSI_ADDRESS_HI);
        m.put("offsetof(struct kvm_irq_routing_entry, u.msi.data)", (long) ArgLayouts.IRE_MSI_DATA);
        m.put("KVM_IRQ_ROUTING_MSI", (long) ArgLayouts.KVM_IRQ_ROUTING_MSI);
        m.put("sizeof(struct kvm_msi)", (long) ArgLayouts.MSI_SIZE);
        m.put("offsetof(struct kvm_msi, address_hi)", (long) ArgLayouts.MSI_ADDRESS_HI);
        m.put("offsetof(struct kvm_msi, data)", (long) ArgLayouts.MSI_DATA);
        m.put("sizeof(struct kvm_signal_mask)", (long) ArgLayouts.SIGNAL_MASK_HEADER);
        m.put("offsetof(struct kvm_signal_mask, sigset)", (long) ArgLayouts.SM_SIGSET);
        // struct kvm_run
        m.put("offsetof(struct kvm_run, request_interrupt_window)", (long) KvmRunLayout.REQUEST_INTERRUPT_WINDOW);
        m.put("offsetof(struct kvm_run, immediate_exit)", (long) KvmRunLayout.IMMEDIATE_EXIT);
        m.put("offsetof(struct kvm_run, exit_reason)", (long) KvmRunLayout.EXIT_REASON);
        m.put("offsetof(struct kvm_run, ready_for_interrupt_injection)",
                (long) KvmRunLayout.READY_FOR_INTERRUPT_INJECTION);
        m.put("offsetof(struct kvm_run, if_flag)", (long) KvmRunLayout.IF_FLAG);
        m.put("offsetof(struct kvm_run, flags)", (long) KvmRunLayout.FLAGS);
        m.put("offsetof(struct kvm_run, cr8)", (long) KvmRunLayout.CR8);
        m.put("offsetof(struct kvm_run, apic_base)", (long) KvmRunLayout.APIC_BASE);
        m.put("offsetof(struct kvm_run, io)", (long) KvmRunLayout.UNION);
        m.put("offsetof(struct kvm_run, io.direction)", (long) KvmRunLayout.IO_DIRECTION);
        m.put("offsetof(struct kvm_run, io.size)", (long) KvmRunLayout.IO_SIZE);
        m.put("offsetof(struct kvm_run, io.port)", (long) KvmRunLayout.IO_PORT);
        m.put("offsetof(struct kvm_run, io.count)", (long) KvmRunLayout.IO_COUNT);
        m.put("offsetof(struct kvm_run, io.data_offset)", (long) KvmRunLayout.IO_DATA_OFFSET);
        m.put("KVM_EXIT_IO_IN", (long) KvmRunLayout.KVM_EXIT_IO_IN);
        m.put("KVM_EXIT_IO_OUT", (long) KvmRunLayout.KVM_EXIT_IO_OUT);
        m.put("offsetof(struct kvm_run, mmio.phys_addr)", (long) KvmRunLayout.MMIO_PHYS_ADDR);
        m.put("offsetof(struct kvm_run, mmio.data)", (long) KvmRunLayout.MMIO_DATA);
        m.put("sizeof(((struct kvm_run*)0)->mmio.data)", (long) KvmRunLayout.MMIO_DATA_MAX);
        m.put("offsetof(struct kvm_run, mmio.len)", (long) KvmRunLayout.MMIO_LEN);
        m.put("offsetof(struct kvm_run, mmio.is_write)", (long) KvmRunLayout.MMIO_IS_WRITE);
        m.put("offsetof(struct kvm_run, fail_entry.hardware_entry_failure_reason)",
                (long) KvmRunLayout.FAIL_ENTRY_REASON);
        m.put("offsetof(struct kvm_run, fail_entry.cpu)", (long) KvmRunLayout.FAIL_ENTRY_CPU);
        m.put("offsetof(struct kvm_run, internal.suberror)", (long) KvmRunLayout.INTERNAL_SUBERROR);
        m.put("offsetof(struct kvm_run, internal.ndata)", (long) KvmRunLayout.INTERNAL_NDATA);
        m.put("offsetof(struct kvm_run, internal.data)", (long) KvmRunLayout.INTERNAL_DATA);
        m.put("sizeof(((struct kvm_run*)0)->internal.data) / 8", (long) KvmRunLayout.INTERNAL_DATA_MAX);
        m.put("offsetof(struct kvm_run, emulation_failure.flags)", (long) KvmRunLayout.EMULATION_FLAGS);
        m.put("offsetof(struct kvm_run, emulation_failure.insn_size)", (long) KvmRunLayout.EMULATION_INSN_SIZE);
        m.put("offsetof(struct kvm_run, emulation_failure.insn_bytes)", (long) KvmRunLayout.EMULATION_INSN_BYTES);
        m.put("sizeof(((struct kvm_run*)0)->emulation_failure.insn_bytes)", (long) KvmRunLayout.EMULATION_INSN_MAX);
        m.put("KVM_INTERNAL_ERROR_EMULATION", (long) VcpuExit.InternalError.EMULATION);
        m.put("KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES", VcpuExit.InternalError.FLAG_INSTRUCTION_BYTES);
        m.put("offsetof(struct kvm_run, system_event.type)", (long) KvmRunLayout.SYSTEM_EVENT_TYPE);
        m.put("offsetof(struct kvm_run, system_event.ndata)", (long) KvmRunLayout.SYSTEM_EVENT_NDATA);
        m.put("offsetof(struct kvm_run, system_event.data)", (long) KvmRunLayout.SYSTEM_EVENT_DATA);
        m.put("KVM_SYSTEM_EVENT_SHUTDOWN", (long) VcpuExit.SystemEvent.SHUTDOWN);
        m.put("KVM_SYSTEM_EVENT_RESET", (long) VcpuExit.SystemEvent.RESET);
        m.put("KVM_SYSTEM_EVENT_CRASH", (long) VcpuExit.SystemEvent.CRASH);
        m.put("offsetof(struct kvm_run, debug.arch.exception)", (long) KvmRunLayout.DEBUG_EXCEPTION);
        m.put("offsetof(struct kvm_run, debug.arch.pc)", (long) KvmRunLayout.DEBUG_PC);
        m.put("offsetof(struct kvm_run, debug.arch.dr6)", (long) KvmRunLayout.DEBUG_DR6);
        m.put("offsetof(struct kvm_run, debug.arch.dr7)", (long) KvmRunLayout.DEBUG_DR7);
        m.put("KVM_EXIT_IO", (long) KvmRunLayout.KVM_EXIT_IO);
        m.put("KVM_EXIT_DEBUG", (long) KvmRunLayout.KVM_EXIT_DEBUG);
        m.put("KVM_EXIT_HLT", (long) KvmRunLayout.KVM_EXIT_HLT);
        m.put("KVM_EXIT_MMIO", (long) KvmRunLayout.KVM_EXIT_MMIO);
        m.put("KVM_EXIT_SHUTDOWN", (long) KvmRunLayout.KVM_EXIT_SHUTDOWN);
        m.put("KVM_EXIT_FAIL_ENTRY", (long) KvmRunLayout.KVM_EXIT_FAIL_ENTRY);
        m.put("KVM_EXIT_INTR", (long) KvmRunLayout.KVM_EXIT_INTR);
        m.put("KVM_EXIT_INTERNAL_ERROR", (long) KvmRunLayout.KVM_EXIT_INTERNAL_ERROR);
        m.put("KVM_EXIT_SYSTEM_EVENT", (long) KvmRunLayout.KVM_EXIT_SYSTEM_EVENT);
        m.put("KVM_EXIT_IOAPIC_EOI", (long) KvmRunLayout.KVM_EXIT_IOAPIC_EOI);
        m.put("offsetof(struct kvm_run, eoi.vector)", (long) KvmRunLayout.EOI_VECTOR);
        // ioctl numbers
        m.put("KVM_GET_API_VERSION", KvmIoctls.KVM_GET_API_VERSION);
        m.put("KVM_CREATE_VM", KvmIoctls.KVM_CREATE_VM);
        m.put("KVM_GET_MSR_INDEX_LIST", KvmIoctls.KVM_GET_MSR_INDEX_LIST);
        m.put("KVM_CHECK_EXTENSION", KvmIoctls.KVM_CHECK_EXTENSION);
        m.put("KVM_GET_VCPU_MMAP_SIZE", KvmIoctls.KVM_GET_VCPU_MMAP_SIZE);
        m.put("KVM_GET_SUPPORTED_CPUID", KvmIoctls.KVM_GET_SUPPORTED_CPUID);
        m.put("KVM_CREATE_VCPU", KvmIoctls.KVM_CREATE_VCPU);
        m.put("KVM_SET_USER_MEMORY_REGION", KvmIoctls.KVM_SET_USER_MEMORY_REGION);
        m.put("KVM_SET_TSS_ADDR", KvmIoctls.KVM_SET_TSS_ADDR);
        m.put("KVM_SET_IDENTITY_MAP_ADDR", KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR);
        m.put("KVM_CREATE_IRQCHIP", KvmIoctls.KVM_CREATE_IRQCHIP);
        m.put("KVM_IRQ_LINE", KvmIoctls.KVM_IRQ_LINE);
        m.put("KVM_IRQFD", KvmIoctls.KVM_IRQFD);
        m.put("KVM_SET_GSI_ROUTING", KvmIoctls.KVM_SET_GSI_ROUTING);
        m.put("KVM_SIGNAL_MSI", KvmIoctls.KVM_SIGNAL_MSI);
        m.put("KVM_CREATE_PIT2", KvmIoctls.KVM_CREATE_PIT2);
        m.put("KVM_IOEVENTFD", KvmIoctls.KVM_IOEVENTFD);
        m.put("KVM_ENABLE_CAP", KvmIoctls.KVM_ENABLE_CAP);
        m.put("KVM_RUN", KvmIoctls.KVM_RUN);
        m.put("KVM_GET_REGS", KvmIoctls.KVM_GET_REGS);
        m.put("KVM_SET_REGS", KvmIoctls.KVM_SET_REGS);
        m.put("KVM_GET_SREGS", KvmIoctls.KVM_GET_SREGS);
        m.put("KVM_SET_SREGS", KvmIoctls.KVM_SET_SREGS);
        m.put("KVM_GET_MSRS", KvmIoctls.KVM_GET_MSRS);
        m.put("KVM_SET_MSRS", KvmIoctls.KVM_SET_MSRS);
        m.put("KVM_SET_SIGNAL_MASK", KvmIoctls.KVM_SET_SIGNAL_MASK);
        m.put("KVM_GET_FPU", KvmIoctls.KVM_GET_FPU);
        m.put("KVM_SET_FPU", KvmIoctls.KVM_SET_FPU);
        m.put("KVM_GET_LAPIC", KvmIoctls.KVM_GET_LAPIC);
        m.put("KVM_SET_LAPIC", KvmIoctls.KVM_SET_LAPIC);
        m.put("KVM_SET_CPUID2", KvmIoctls.KVM_SET_CPUID2);
        m.put("KVM_GET_MP_STATE", KvmIoctls.KVM_GET_MP_STATE);
        m.put("KVM_SET_MP_STATE", KvmIoctls.KVM_SET_MP_STATE);
        // capabilities
        for (var f : KvmCap.class.getFields()) {
            if (f.getType() == int.class) {
                try {
                    m.put("KVM_CAP_" + f.getName(), (long) f.getInt(null));
                } catch (IllegalAccessException e) {
                    throw new AssertionError(e);
                }
            }
        }
        m.put("KVM_API_VERSION", (long) Kvm.API_VERSION);
        return m;
    }

    @Test
    void sizesMatchTheDocumentedAbi() {
        assertEquals(144, Regs.SIZE);
        assertEquals(312, Sregs.SIZE);
        assertEquals(24, Segment.SIZE);
        assertEquals(416, Fpu.SIZE);
        assertEquals(40, CpuidEntry.SIZE);
        assertEquals(16, MsrEntry.SIZE);
        assertEquals(1024, LapicState.SIZE);
        assertEquals(8, KvmRunLayout.EXIT_REASON);
        assertEquals(32, KvmRunLayout.IO_DIRECTION);
        assertEquals(32, KvmRunLayout.MMIO_PHYS_ADDR);
        // Sregs' last field ends exactly at its size.
        assertEquals(Sregs.SIZE, SregsLayout.INTERRUPT_BITMAP + 8 * new Sregs().interruptBitmap.length);
        assertEquals(Fpu.SIZE, FpuLayout.MXCSR + 8);
    }

    @Test
    void ioctlNumbersMatchWellKnownValues() {
        // Values as seen in strace output of any VMM.
        assertEquals(0xAE80L, KvmIoctls.KVM_RUN);
        assertEquals(0x8090AE81L, KvmIoctls.KVM_GET_REGS);
        assertEquals(0x4090AE82L, KvmIoctls.KVM_SET_REGS);
        assertEquals(0x4138AE84L, KvmIoctls.KVM_SET_SREGS);
        assertEquals(0x4020AE46L, KvmIoctls.KVM_SET_USER_MEMORY_REGION);
        assertEquals(0xC008AE05L, KvmIoctls.KVM_GET_SUPPORTED_CPUID);
    }

    @Test
    void everyConstantMatchesTheKernelHeaders(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(present("gcc"), "gcc is not installed: cannot compare with <linux/kvm.h>");
        Map<String, Long> expected = expectations();
        List<String> exprs = new ArrayList<>(expected.keySet());
        StringBuilder c = new StringBuilder("#include <stddef.h>\n#include <stdio.h>\n#include <linux/kvm.h>\n"
                + "int main(void) {\n");
        for (int i = 0; i < exprs.size(); i++) {
            c.append("  printf(\"%d %llu\\n\", ").append(i).append(", (unsigned long long)(")
                    .append(exprs.get(i)).append("));\n");
        }
        c.append("  return 0;\n}\n");
        Path src = dir.resolve("abi.c");
        Path exe = dir.resolve("abi");
        Files.writeString(src, c);
        String compile = run(dir, "gcc", "-o", exe.toString(), src.toString());
        String output = run(dir, exe.toString());
        List<String> mismatches = new ArrayList<>();
        int seen = 0;
        for (String line : output.split("\n")) {
            String[] parts = line.trim().split(" ");
            if (parts.length != 2) {
                continue;
            }
            String expr = exprs.get(Integer.parseInt(parts[0]));
            long actual = Long.parseUnsignedLong(parts[1]);
            seen++;
            if (actual != expected.get(expr)) {
                mismatches.add(expr + ": C says " + actual + " (0x" + Long.toHexString(actual) + "), Java says "
                        + expected.get(expr) + " (0x" + Long.toHexString(expected.get(expr)) + ")");
            }
        }
        assertEquals(exprs.size(), seen, "C program printed too few lines; gcc said: " + compile);
        assertTrue(mismatches.isEmpty(), String.join("\n", mismatches));
    }

    /**
     * The arm64 ioctls, structs, register ids and constants against the arm64 kernel headers: compiled (not run) by
     * the aarch64 cross compiler, one _Static_assert each, so a mismatch is a compile error naming it.
     */
    @Test
    void arm64ConstantsMatchTheArm64KernelHeaders(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(present("aarch64-linux-gnu-gcc"), "aarch64-linux-gnu-gcc is not installed: cannot compare with arm64's <linux/kvm.h>");
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("KVM_GET_ONE_REG", KvmIoctls.KVM_GET_ONE_REG);
        m.put("KVM_SET_ONE_REG", KvmIoctls.KVM_SET_ONE_REG);
        m.put("KVM_ARM_VCPU_INIT", KvmIoctls.KVM_ARM_VCPU_INIT);
        m.put("KVM_ARM_PREFERRED_TARGET", KvmIoctls.KVM_ARM_PREFERRED_TARGET);
        m.put("KVM_CREATE_DEVICE", KvmIoctls.KVM_CREATE_DEVICE);
        m.put("KVM_SET_DEVICE_ATTR", KvmIoctls.KVM_SET_DEVICE_ATTR);
        m.put("KVM_GET_DEVICE_ATTR", KvmIoctls.KVM_GET_DEVICE_ATTR);
        m.put("KVM_HAS_DEVICE_ATTR", KvmIoctls.KVM_HAS_DEVICE_ATTR);
        m.put("KVM_RUN", KvmIoctls.KVM_RUN);
        m.put("KVM_IRQ_LINE", KvmIoctls.KVM_IRQ_LINE);
        m.put("KVM_IRQFD", KvmIoctls.KVM_IRQFD);
        m.put("KVM_IOEVENTFD", KvmIoctls.KVM_IOEVENTFD);
        m.put("KVM_SET_USER_MEMORY_REGION", KvmIoctls.KVM_SET_USER_MEMORY_REGION);
        m.put("KVM_ENABLE_CAP", KvmIoctls.KVM_ENABLE_CAP);
        m.put("KVM_SET_SIGNAL_MASK", KvmIoctls.KVM_SET_SIGNAL_MASK);
        m.put("sizeof(struct kvm_vcpu_init)", (long) ArgLayouts.VCPU_INIT_SIZE);
        m.put("offsetof(struct kvm_vcpu_init, features)", (long) ArgLayouts.VI_FEATURES);
        m.put("sizeof(struct kvm_one_reg)", (long) ArgLayouts.ONE_REG_SIZE);
        m.put("sizeof(struct kvm_device_attr)", (long) ArgLayouts.DEVICE_ATTR_SIZE);
        m.put("offsetof(struct kvm_device_attr, addr)", (long) ArgLayouts.DA_ADDR);
        m.put("sizeof(struct kvm_create_device)", (long) ArgLayouts.CREATE_DEVICE_SIZE);
        m.put("offsetof(struct kvm_run, arm_nisv.fault_ipa)", (long) KvmRunLayout.NISV_FAULT_IPA);
        m.put("offsetof(struct kvm_run, mmio.phys_addr)", (long) KvmRunLayout.MMIO_PHYS_ADDR);
        m.put("offsetof(struct kvm_run, system_event.type)", (long) KvmRunLayout.SYSTEM_EVENT_TYPE);
        m.put("KVM_EXIT_ARM_NISV", (long) KvmRunLayout.KVM_EXIT_ARM_NISV);
        m.put("KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.pc)", Arm64Regs.PC);
        m.put("KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.pstate)", Arm64Regs.PSTATE);
        m.put("KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.regs[30])", Arm64Regs.x(30));
        m.put("KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(sp_el1)", Arm64Regs.SP_EL1);
        m.put("KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(elr_el1)", Arm64Regs.ELR_EL1);
        m.put("ARM64_SYS_REG(3, 0, 0, 0, 5)", Arm64Regs.MPIDR_EL1);
        m.put("ARM64_SYS_REG(3, 0, 5, 2, 0)", Arm64Regs.ESR_EL1);
        m.put("ARM64_SYS_REG(3, 0, 6, 0, 0)", Arm64Regs.FAR_EL1);
        m.put("ARM64_SYS_REG(3, 0, 1, 0, 0)", Arm64Regs.SCTLR_EL1);
        m.put("KVM_ARM_VCPU_PSCI_0_2", (long) Arm64Regs.FEATURE_PSCI_0_2);
        m.put("KVM_ARM_VCPU_POWER_OFF", (long) Arm64Regs.FEATURE_POWER_OFF);
        m.put("KVM_DEV_TYPE_ARM_VGIC_V3", (long) KvmDevice.ARM_VGIC_V3);
        m.put("KVM_DEV_TYPE_ARM_VGIC_V2", (long) KvmDevice.ARM_VGIC_V2);
        m.put("KVM_CAP_ARM_PSCI_0_2", (long) KvmCap.ARM_PSCI_0_2);
        m.put("KVM_CAP_ARM_NISV_TO_USER", (long) KvmCap.ARM_NISV_TO_USER);
        m.put("KVM_CAP_ONE_REG", (long) KvmCap.ONE_REG);
        m.put("KVM_CAP_DEVICE_CTRL", (long) KvmCap.DEVICE_CTRL);
        StringBuilder c = new StringBuilder("#include <stddef.h>\n#include <linux/kvm.h>\n");
        for (Map.Entry<String, Long> e : m.entrySet()) {
            c.append("_Static_assert((unsigned long long)(").append(e.getKey()).append(") == ")
                    .append(Long.toUnsignedString(e.getValue())).append("ULL, \"").append(e.getKey().replace("\"", "'"))
                    .append(" is 0x").append(Long.toHexString(e.getValue())).append(" in Java\");\n");
        }
        Path src = dir.resolve("arm64.c");
        Files.writeString(src, c);
        run(dir, "aarch64-linux-gnu-gcc", "-fsyntax-only", src.toString());
    }

    private static boolean present(String compiler) {
        try {
            Process p = new ProcessBuilder(compiler, "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    private static String run(Path dir, String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), String.join(" ", command) + " timed out");
        assertEquals(0, p.exitValue(), String.join(" ", command) + " failed:\n" + out);
        return out;
    }
}
