package dev.jkrun.vmm.vstate;

import dev.jkrun.devices.bus.Bus;
import dev.jkrun.hypervisor.Hypervisor.Vcpu;
import dev.jkrun.hypervisor.VcpuDiagnosis;
import dev.jkrun.hypervisor.VcpuExit;
import dev.jkrun.libc.ThreadKick;
import dev.jkrun.vmm.StopReason;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;

/**
 * One platform thread running one vCPU's KVM_RUN loop. Port and MMIO exits are dispatched synchronously to the
 * buses on this thread; anything that ends the guest is reported to the {@link Vmm} once, and the loop ends.
 *
 * <p>Kicking: where the hypervisor interrupts a vCPU itself ({@link Vcpu#exitsOnRequest()}, Hypervisor.framework),
 * a kick is that request. Otherwise (KVM) this thread keeps {@link ThreadKick#SIGNAL} blocked and lets KVM unblock it only inside KVM_RUN, so
 * {@link #kick()} interrupts a running guest without a Java signal handler; a kick that arrives outside KVM_RUN
 * stays pending and makes the next KVM_RUN return at once. Order matters: {@link Vmm#stopping()} is set before
 * the kick, and read after every KVM_RUN.
 */
final class VcpuThread implements Runnable {
    private final Vmm vmm;
    private final Vcpu vcpu;
    private final VcpuDiagnosis diagnosis;
    private final LastHit pio;
    private final LastHit mmio;
    private final CountDownLatch ready = new CountDownLatch(1);
    /** The hypervisor interrupts this vCPU itself (Hypervisor.framework), instead of the kick signal. */
    private final boolean ownKick;
    private volatile ThreadKick.NativeThread nativeThread;
    /** Guards {@link #exited}: no kick may be sent once the thread is past its final drain (see {@link #kick()}). */
    private final Object kickLock = new Object();
    private boolean exited;
    /** A register snapshot asked for by {@link #sample()}, filled in by this thread at its next exit. */
    private volatile CompletableFuture<String> sampleWanted;
    final Thread thread;

    VcpuThread(Vmm vmm, Vcpu vcpu, VcpuDiagnosis diagnosis, Bus pio, Bus mmio, String vmName) {
        this.vmm = vmm;
        this.vcpu = vcpu;
        this.diagnosis = diagnosis;
        this.ownKick = vcpu.exitsOnRequest();
        this.pio = new LastHit(pio);
        this.mmio = new LastHit(mmio);
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
            if (exited) {
                return;
            }
            if (ownKick) {
                vcpu.requestExit();
                return;
            }
            ThreadKick.NativeThread t = nativeThread;
            if (t != null) {
                ThreadKick.kick(t);
            }
        }
    }

    /**
     * Where this vCPU is now (its registers, as the architecture's {@link VcpuDiagnosis} reads them): the thread is kicked out of KVM_RUN, reads its registers
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
        f.complete(diagnosis.sample(vcpu, vmm.memory()));
    }

    private void declareExitedAndDrain() {
        synchronized (kickLock) {
            exited = true;
        }
        if (!ownKick) { // pthread_kill has queued every earlier kick on this thread before returning: consume them all
            ThreadKick.drain();
        }
    }

    @Override
    public void run() {
        try {
            if (!ownKick) {
                ThreadKick.blockOnCurrentThread();
                nativeThread = ThreadKick.current();
                vcpu.setSignalMask(ThreadKick.maskWithoutKick());
            }
        } catch (RuntimeException | Error e) { // (an Error too: start() waits on ready)
            declareExitedAndDrain();
            vcpu.threadEnding();
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
            vcpu.threadEnding();
        }
    }

    /** Access buffers by width (1..8), reused on every exit: devices read or fill them and keep no reference. */
    private final byte[][] widths = new byte[9][];

    /** A bus and the device it last dispatched to: a guest polling one register finds it without a search. */
    private static final class LastHit {
        private final Bus bus;
        private Bus.Range last;

        LastHit(Bus bus) { this.bus = bus; }

        Bus.Range at(long address) {
            Bus.Range r = last;
            if (r == null || !r.contains(address)) {
                r = bus.find(address);
                if (r != null) {
                    last = r;
                }
            }
            return r;
        }

        /** {@link Bus#write} through the remembered device. */
        void write(long address, byte[] data) {
            Bus.Range r = at(address);
            if (r != null) {
                r.device().write(address - r.base(), data);
            }
        }

        /** {@link Bus#read} through the remembered device; nothing there reads as all ones (the bus floats high). */
        void read(long address, byte[] data) {
            Arrays.fill(data, (byte) 0);
            Bus.Range r = at(address);
            if (r != null) {
                r.device().read(address - r.base(), data);
            } else {
                Arrays.fill(data, (byte) 0xFF);
            }
        }
    }

    private byte[] width(int n) {
        if (n < 1 || n > 8) {
            throw new IllegalStateException("vCPU " + vcpu.id() + ": an access of " + n + " bytes"); // KVM gives 1..8
        }
        byte[] b = widths[n];
        return b != null ? b : (widths[n] = new byte[n]);
    }

    /** The vCPU loop: port and MMIO exits are handled in place and allocate nothing; the rest are decoded. */
    private void loop() {
        while (!vmm.stopping()) {
            long t0 = Vcpu.PROFILE ? System.nanoTime() : 0;
            int kind = vcpu.enter();
            long t1 = Vcpu.PROFILE ? System.nanoTime() : 0;
            switch (kind) {
                case Vcpu.EXIT_IO_OUT -> {
                    byte[] b = width(vcpu.ioSize());
                    for (int at = 0; at < vcpu.dataLength(); at += b.length) {
                        vcpu.exitData(at, b);
                        pio.write(vcpu.ioPort(), b);
                    }
                }
                case Vcpu.EXIT_IO_IN -> {
                    byte[] b = width(vcpu.ioSize());
                    for (int at = 0; at < vcpu.dataLength(); at += b.length) {
                        pio.read(vcpu.ioPort(), b);
                        vcpu.completeRead(at, b);
                    }
                }
                case Vcpu.EXIT_MMIO_WRITE -> {
                    if (vcpu.dataLength() == 0) {
                        continue;
                    }
                    byte[] b = width(vcpu.dataLength());
                    vcpu.exitData(0, b);
                    mmio.write(vcpu.mmioAddress(), b);
                }
                case Vcpu.EXIT_MMIO_READ -> {
                    if (vcpu.dataLength() == 0) {
                        continue;
                    }
                    byte[] b = width(vcpu.dataLength());
                    mmio.read(vcpu.mmioAddress(), b);
                    vcpu.completeRead(0, b);
                }
                case Vcpu.EXIT_INTERRUPTED -> {
                    if (!ownKick) {
                        ThreadKick.drain();
                    }
                    takeSample();
                }
                default -> {
                    VcpuExit exit = vcpu.lastExit();
                    if (exit instanceof VcpuExit.IoapicEoi e) {
                        vmm.endOfInterrupt(e.vector());
                    } else if (exit instanceof VcpuExit.SystemEvent e
                            && (e.type() == VcpuExit.SystemEvent.RESET || e.type() == VcpuExit.SystemEvent.SHUTDOWN)) {
                        // PSCI SYSTEM_RESET / SYSTEM_OFF: after init reported a status, the workload's end
                        vmm.guestEnded(GuestStops.describe(exit, vcpu, vmm.memory(), diagnosis),
                                e.type() == VcpuExit.SystemEvent.RESET);
                        return;
                    } else {
                        vmm.guestStopped(GuestStops.describe(exit, vcpu, vmm.memory(), diagnosis));
                        return;
                    }
                }
            }
            if (Vcpu.PROFILE && kind >= Vcpu.EXIT_IO_OUT && kind <= Vcpu.EXIT_MMIO_READ) {
                ExitProfile.add(t0, vcpu.exitReturnedNanos(), t1, System.nanoTime());
            }
        }
    }
}
