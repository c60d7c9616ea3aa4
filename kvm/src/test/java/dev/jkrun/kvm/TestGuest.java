package dev.jkrun.kvm;

import dev.jkrun.libc.AnonymousMapping;
import dev.jkrun.libc.Ioctl;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.libc.NativeBuffer;

/**
 * A VM with 2 MiB of RAM at 0 and one vCPU about to run hand-assembled code at {@link #CODE}, in real mode or in
 * 64-bit long mode (set up the way libkrun does, notes §1.8, but with 4 GiB identity-mapped so that MMIO
 * addresses like 0xd0000000 are reachable).
 */
final class TestGuest implements AutoCloseable {
    static final long CODE = 0x1000;
    static final long RAM = 2 << 20;

    enum Mode { REAL, LONG }

    final Kvm kvm;
    final Vm vm;
    final AnonymousMapping ram;
    final NativeBuffer mem;
    final Vcpu vcpu;

    TestGuest(Mode mode, boolean irqchip, byte... code) {
        kvm = Kvm.open();
        Vm v = null;
        AnonymousMapping m = null;
        try {
            v = kvm.createVm();
            v.setTssAddress(0xFFFB_D000L);
            if (irqchip) {
                v.createIrqchip();
                v.createPit2();
            }
            m = AnonymousMapping.map(RAM);
            v.setUserMemoryRegion(0, GuestAddress.of(0), m);
            mem = Ioctl.wrap(m.address(), m.size());
            mem.put(CODE, code, 0, code.length);
            vcpu = v.createVcpu(0);
            if (mode == Mode.REAL) {
                enterRealMode();
            } else {
                enterLongMode();
            }
        } catch (RuntimeException e) {
            if (v != null) {
                v.close();
            }
            if (m != null) {
                m.close();
            }
            kvm.close();
            throw e;
        }
        vm = v;
        ram = m;
    }

    /** Reset state except CS:IP = 0000:1000. */
    private void enterRealMode() {
        Sregs s = vcpu.getSregs();
        s.cs.base = 0;
        s.cs.selector = 0;
        vcpu.setSregs(s);
        Regs r = new Regs();
        r.rip = CODE;
        r.rflags = 2;
        vcpu.setRegs(r);
    }

    private void enterLongMode() {
        // GDT at 0x500: null, code 0xA09B, data 0xC093, TSS 0x808B (libkrun's flags).
        mem.putLong(0x500, 0);
        mem.putLong(0x508, 0x00AF9B000000FFFFL);
        mem.putLong(0x510, 0x00CF93000000FFFFL);
        mem.putLong(0x518, 0x008F8B000000FFFFL);
        // PML4 at 0x9000 -> PDPT at 0xA000 -> four PDs at 0xB000.. of 2 MiB pages: identity map of 4 GiB.
        mem.putLong(0x9000, 0xA003);
        for (int i = 0; i < 4; i++) {
            long pd = 0xB000 + 0x1000L * i;
            mem.putLong(0xA000 + 8L * i, pd | 3);
            for (int j = 0; j < 512; j++) {
                mem.putLong(pd + 8L * j, ((long) (i * 512 + j) << 21) | 0x83);
            }
        }
        Sregs s = vcpu.getSregs();
        segment(s.cs, 0x08, (byte) 0xB, (byte) 0, (byte) 1);
        for (Segment d : new Segment[] {s.ds, s.es, s.fs, s.gs, s.ss}) {
            segment(d, 0x10, (byte) 3, (byte) 1, (byte) 0);
        }
        segment(s.tr, 0x18, (byte) 0xB, (byte) 0, (byte) 0);
        s.tr.s = 0;
        s.gdt.base = 0x500;
        s.gdt.limit = 31;
        s.idt.base = 0x520;
        s.idt.limit = 7;
        s.cr3 = 0x9000;
        s.cr4 |= 0x20;           // PAE
        s.cr0 |= 0x8000_0001L;   // PG | PE
        s.efer |= 0x500;         // LME | LMA
        vcpu.setSregs(s);
        Regs r = new Regs();
        r.rip = CODE;
        r.rflags = 2;
        r.rsp = 0x8FF0;
        vcpu.setRegs(r);
    }

    private static void segment(Segment g, int selector, byte type, byte db, byte l) {
        g.base = 0;
        g.limit = 0xFFFF_FFFF;
        g.selector = (short) selector;
        g.type = type;
        g.present = 1;
        g.dpl = 0;
        g.db = db;
        g.s = 1;
        g.l = l;
        g.g = 1;
        g.avl = 0;
        g.unusable = 0;
    }

    @Override
    public void close() {
        vcpu.close();
        vm.close();
        ram.close();
        kvm.close();
    }
}
