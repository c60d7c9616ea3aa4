package dev.jkrun.vmm;

import dev.jkrun.vmm.builder.VmmBuilder;
import dev.jkrun.vmm.vstate.Vmm;
import java.io.PrintStream;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * A microVM whose lifecycle returns to the caller (unlike libkrun's krun_start_enter): {@link #create} builds it,
 * {@link #start()} runs it, {@link #stopped()} completes with the {@link StopReason}, and by then every thread,
 * fd and mapping it used is released (except guest memory under a device thread that did not stop in time: it stays
 * mapped, pages freed, until that thread ends; an error in the log names it). Several can run at once in one JVM.
 */
public final class VirtualMachine implements AutoCloseable {
    private static final AtomicInteger COUNTER = new AtomicInteger();
    private final Vmm vmm;

    private VirtualMachine(Vmm vmm) { this.vmm = vmm; }

    /** For tests in this package. */
    Vmm vmm() { return vmm; }

    /** Builds the VM without running it. Throws {@link ConfigurationException} naming the bad field. */
    public static VirtualMachine create(VmConfig config) { return create(config, System.err, null); }

    /**
     * @param progress where one-time set-up (fetching libkrunfw) reports progress
     * @param debugListener receives each line the guest writes to the debug port 0x3F8 (may be null)
     */
    public static VirtualMachine create(VmConfig config, PrintStream progress, Consumer<String> debugListener) {
        // the counter keeps names unique and the "jkrun-vm" prefix, which thread-leak checks look for
        String name = "jkrun-vm" + COUNTER.incrementAndGet() + config.machine().name().map(n -> "-" + n).orElse("");
        return new VirtualMachine(VmmBuilder.build(config, new VmmBuilder.Options(name, progress, debugListener)));
    }

    public VirtualMachine start() {
        vmm.start();
        return this;
    }

    public CompletableFuture<StopReason> stopped() { return vmm.stopped(); }

    /** Blocks until the VM has stopped and released its resources. */
    public StopReason waitForStop() throws InterruptedException {
        try {
            return vmm.stopped().get();
        } catch (ExecutionException e) {
            throw new IllegalStateException(e.getCause());
        }
    }

    public Optional<StopReason> waitForStop(Duration timeout) throws InterruptedException {
        try {
            return Optional.of(vmm.stopped().get(timeout.toNanos(), TimeUnit.NANOSECONDS));
        } catch (TimeoutException e) {
            return Optional.empty();
        } catch (ExecutionException e) {
            throw new IllegalStateException(e.getCause());
        }
    }

    /**
     * Orderly stop: asks the guest to power off — jkrun's init gets a request on its control port, sends SIGTERM to
     * the command, and powers off with its status once it exits (SHUTDOWN); test guests see their power button — and
     * forces the VM off (KILLED) when it has not stopped within {@code grace}, or at once when it has no way to be
     * asked (a kernel without jkrun's init). Returns how the VM stopped.
     */
    public StopReason stop(Duration grace) throws InterruptedException {
        if (vmm.started() && vmm.requestStop()) {
            Optional<StopReason> r = waitForStop(grace);
            if (r.isPresent()) {
                return r.get();
            }
            vmm.guestStopped(StopReason.of(StopReason.Kind.KILLED, "did not power off within " + grace + " of stop()"));
        } else {
            kill();
        }
        return waitForStop();
    }

    /** {@link #stop(Duration)} without blocking the caller. */
    public CompletableFuture<StopReason> stopAsync(Duration grace) {
        CompletableFuture<StopReason> f = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                f.complete(stop(grace));
            } catch (Throwable e) {
                f.completeExceptionally(e);
            }
        }, "jkrun-stop");
        t.setDaemon(true);
        t.start();
        return f;
    }

    /** Forces the VM off: vCPUs are kicked out of KVM_RUN and everything is released. Returns at once. */
    public void kill() { vmm.guestStopped(StopReason.of(StopReason.Kind.KILLED, "stopped by the host")); }

    /**
     * The VM's virtio-balloon (there by default; not with {@code VmBuilder.balloon(false)}): set the target the guest
     * inflates toward, read what it reports. Empty without one.
     */
    public Optional<Balloon> balloon() { return vmm.balloon(); }

    /** The host terminal changed size: pass it on to the guest's console. */
    public void resizeConsole(int cols, int rows) { vmm.resizeConsole(cols, rows); }

    /**
     * Where each vCPU is right now, one line each (RIP, RSP, RFLAGS, CR3, CPL, RDI/RSI/RAX, and the kernel text
     * addresses on its stack), for diagnosing a guest that spins or hangs without output; empty when the VM is not
     * running. Each vCPU leaves KVM_RUN briefly.
     */
    public List<String> vcpuState() {
        if (!vmm.started() || vmm.stopped().isDone()) {
            return List.of();
        }
        return vmm.sampleVcpus(Duration.ofSeconds(2));
    }

    /**
     * The state of the VM's devices (each virtio transport: status, interrupt status, its queues' indexes on both
     * sides) and of jkrun's own interrupt controller, one line each: with {@link #vcpuState()}, what a guest that
     * waits forever is waiting for. Empty once the VM released its resources.
     */
    public List<String> deviceState() { return vmm.deviceState(); }

    /** Text the guest wrote to the debug port (bounded). */
    public String debugOutput() { return vmm.debugLog().text(); }

    /** Kills the VM if it still runs and waits until its resources are released. */
    @Override
    public void close() {
        kill();
        boolean interrupted = false;
        while (true) {
            try {
                vmm.stopped().get();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            } catch (ExecutionException e) {
                break;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
