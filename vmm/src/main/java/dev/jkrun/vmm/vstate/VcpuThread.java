package dev.jkrun.vmm.vstate;

import dev.jkrun.devices.bus.Bus;
import dev.jkrun.kvm.Regs;
import dev.jkrun.kvm.Sregs;
import dev.jkrun.kvm.Vcpu;
import dev.jkrun.kvm.VcpuExit;
import dev.jkrun.libc.ThreadKick;
import dev.jkrun.vmm.StopReason;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;

/**
 * One platform thread running one vCPU's KVM_RUN loop. Port and MMIO exits are dispatched synchronously to the
 * buses on this thread; anything that ends the guest is reported to the {@link Vmm} once, and the loop ends.
 *
 * <p>Kicking: this thread keeps {@link ThreadKick#SIGNAL} blocked and lets KVM unblock it only inside KVM_RUN, so
 * {@link #kick()} interrupts a running guest without a Java signal handler; a kick that arrives outside KVM_RUN
 * stays pending and makes the next KVM_RUN return at once. Order matters: {@link Vmm#stopping()} is set before
 * the kick, and read after every KVM_RUN.
 */
final class VcpuThread implements Runnable {
    private final Vmm vmm;
    private final Vcpu vcpu;
    private final Bus pio;
    private final Bus mmio;
    private final CountDownLatch ready = new CountDownLatch(1);
    private volatile ThreadKick.NativeThread nativeThread;
    /** Guards {@link #exited}: no kick may be sent once the thread is past its final drain (see {@link #kick()}). */
    private final Object kickLock = new Object();
    private boolean exited;
    /** A register snapshot asked for by {@link #sample()}, filled in by this thread at its next exit. */
    private volatile CompletableFuture<String> sampleWanted;
    final Thread thread;

    VcpuThread(Vmm vmm, Vcpu vcpu, Bus pio, Bus mmio, String vmName) {
        this.vmm = vmm;
        this.vcpu = vcpu;
        this.pio = pio;
        this.mmio = mmio;
        this.thread = new Thread(this, vmName + "-vcpu" + vcpu.id());
        this.thread.setDaemon(true);
    }

    void start() throws InterruptedException {
        thread.start();
        ready.await();
    }

    /**
     * Makes KVM_RUN return on this vCPU (now, or at its next entry). A kick must never be pending when the thread
     * ends: HotSpot restores the thread's creation-time signal mask as it exits (os::free_thread), which would
     * deliver the kick with its default action and kill the process. So kicks are sent only under
     * {@link #kickLock} while the thread has not declared itself exited, and it drains after declaring.
     */
    void kick() {
        synchronized (kickLock) {
            ThreadKick.NativeThread t = nativeThread;
            if (t != null && !exited) {
                ThreadKick.kick(t);
            }
        }
    }

    /**
     * Where this vCPU is now (RIP, RSP, RFLAGS, CR3, CPL): the thread is kicked out of KVM_RUN, reads its registers
     * and goes back in. For diagnosing a guest that spins with no output.
     */
    CompletableFuture<String> sample() {
        CompletableFuture<String> f = new CompletableFuture<>();
        sampleWanted = f;
        kick();
        return f;
    }

    private void takeSample() {
        CompletableFuture<String> f = sampleWanted;
        if (f == null) {
            return;
        }
        sampleWanted = null;
        try {
            Regs r = vcpu.getRegs();
            Sregs s = vcpu.getSregs();
            f.complete(String.format("vCPU %d: rip=%#x rsp=%#x rflags=%#x cr3=%#x cpl=%d rdi=%#x rsi=%#x rax=%#x"
                    + " stack text words %s", vcpu.id(), r.rip, r.rsp, r.rflags, s.cr3, s.cs.selector & 3, r.rdi, r.rsi,
                    r.rax, GuestStack.kernelTextWords(vmm.memory(), s.cr3, r.rsp, 256)));
        } catch (RuntimeException e) {
            f.complete("vCPU " + vcpu.id() + ": registers unavailable: " + e.getMessage());
        }
    }

    private void declareExitedAndDrain() {
        synchronized (kickLock) {
            exited = true;
        }
        // pthread_kill has queued every earlier kick on this thread before returning: consume them all.
        ThreadKick.drain();
    }

    @Override
    public void run() {
        try {
            ThreadKick.blockOnCurrentThread();
            nativeThread = ThreadKick.current();
            vcpu.setSignalMask(ThreadKick.maskWithoutKick());
        } catch (RuntimeException e) {
            declareExitedAndDrain();
            ready.countDown();
            vmm.guestStopped(StopReason.of(StopReason.Kind.START_FAILED, "vCPU " + vcpu.id() + " set-up failed: " + e.getMessage()));
            return;
        }
        ready.countDown();
        try {
            loop();
        } catch (RuntimeException | Error e) {
            vmm.guestStopped(StopReason.of(StopReason.Kind.INFRASTRUCTURE_ERROR, "vCPU " + vcpu.id() + ": " + e));
        } finally {
            declareExitedAndDrain();
        }
    }

    private void loop() {
        while (!vmm.stopping()) {
            VcpuExit exit = vcpu.run();
            if (exit instanceof VcpuExit.IoOut o) {
                if (o.count() == 1) {
                    pio.write(o.port(), o.data());
                } else {
                    for (int i = 0; i < o.count(); i++) {
                        pio.write(o.port(), Arrays.copyOfRange(o.data(), i * o.size(), (i + 1) * o.size()));
                    }
                }
            } else if (exit instanceof VcpuExit.IoIn in) {
                byte[] data = new byte[in.size() * in.count()];
                byte[] one = new byte[in.size()];
                for (int i = 0; i < in.count(); i++) {
                    Arrays.fill(one, (byte) 0);
                    if (!pio.read(in.port(), one)) {
                        Arrays.fill(one, (byte) 0xFF); // nothing there: the bus floats high, as on a PC
                    }
                    System.arraycopy(one, 0, data, i * in.size(), in.size());
                }
                vcpu.completeRead(data);
            } else if (exit instanceof VcpuExit.MmioWrite w) {
                mmio.write(w.address(), w.data());
            } else if (exit instanceof VcpuExit.MmioRead r) {
                byte[] data = new byte[r.length()];
                if (!mmio.read(r.address(), data)) {
                    Arrays.fill(data, (byte) 0xFF);
                }
                vcpu.completeRead(data);
            } else if (exit instanceof VcpuExit.IoapicEoi e) {
                vmm.endOfInterrupt(e.vector());
            } else if (exit instanceof VcpuExit.Interrupted) {
                ThreadKick.drain();
                takeSample();
            } else {
                vmm.guestStopped(GuestStops.describe(exit, vcpu, vmm));
                return;
            }
        }
    }
}
