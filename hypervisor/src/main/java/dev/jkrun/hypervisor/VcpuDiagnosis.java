package dev.jkrun.hypervisor;

import dev.jkrun.memory.GuestMemory;

/**
 * What an architecture can say about where a vCPU is, for stop reasons and for sampling a guest that spins with no
 * output: its registers, and the instruction or stack they point at, read through the guest's own page tables.
 * Called on the vCPU's own thread; never throws (what cannot be read is said so in the text).
 */
public interface VcpuDiagnosis {
    /** " at RIP 0x…, instruction bytes …" (a leading space), after an exit that stops the guest. */
    String location(Hypervisor.Vcpu vcpu, GuestMemory memory, VcpuExit exit);

    /** "vCPU n: rip=… rsp=… …": the registers and what they point at, now. */
    String sample(Hypervisor.Vcpu vcpu, GuestMemory memory);

    /** A diagnosis that knows no registers (a hypervisor or architecture without a reader). */
    VcpuDiagnosis NONE = new VcpuDiagnosis() {
        @Override
        public String location(Hypervisor.Vcpu vcpu, GuestMemory memory, VcpuExit exit) { return ""; }

        @Override
        public String sample(Hypervisor.Vcpu vcpu, GuestMemory memory) { return "vCPU " + vcpu.id() + ": registers unavailable"; }
    };
}
