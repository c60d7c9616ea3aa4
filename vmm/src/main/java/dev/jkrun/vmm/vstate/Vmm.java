package dev.jkrun.vmm.vstate;

import dev.jkrun.devices.bus.Bus;
import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.hypervisor.VcpuDiagnosis;
import dev.jkrun.memory.MmapGuestMemory;
import dev.jkrun.vmm.StopReason;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A built VM's live state: memory, vCPU threads, buses, and everything to release. The first stop reason wins;
 * a supervisor thread then kicks and joins the vCPUs, closes the devices (joining their threads), and releases
 * fds and memory in reverse order of creation before completing {@link #stopped()}.
 *
 * <p>Guest memory is unmapped only when no thread that could touch it is alive. Device joins give up after a
 * while; a device thread that is still running then (stuck in a host write, a bug) may be in the middle of a copy
 * into guest memory, and unmapping under it would crash the whole JVM. Such memory is retired instead (no new
 * accesses, pages returned to the host, addresses still mapped), one error names the threads, and a reaper thread
 * unmaps it once they have ended.
 */
public final class Vmm {
    private static final Logger LOG = LoggerFactory.getLogger(Vmm.class);
    private final String name;
    private final MmapGuestMemory memory;
    private final List<VcpuThread> vcpuThreads = new ArrayList<>();
    /** Closed in reverse order after the vCPUs have stopped: devices, eventfds, vCPU fds, VM, /dev/kvm, memory. */
    private final List<AutoCloseable> resources;
    private final AtomicReference<StopReason> reason = new AtomicReference<>();
    private final CountDownLatch stopRequested = new CountDownLatch(1);
    /**
     * Counted down once start() has started every vCPU thread (or given up): the supervisor waits for it before it
     * checks which vCPU threads are alive, or a kill racing start() saw a thread not yet started as ended, released
     * the VM and left that thread running on retired memory.
     */
    private final CountDownLatch launched = new CountDownLatch(1);
    private final CompletableFuture<StopReason> stopped = new CompletableFuture<>();
    private final AtomicBoolean started = new AtomicBoolean();
    /** Orders start() against a stop that comes before it (see guestStopped). */
    private final Object startLock = new Object();
    private final DebugLog debugLog;
    private volatile boolean stopping;
    private final VmControl control;

    /** A VM whose devices talk to nothing but the buses (no exit status, no power button). */
    public Vmm(String name, MmapGuestMemory memory, List<? extends Hypervisor.Vcpu> vcpus, Bus pio, Bus mmio,
               List<AutoCloseable> resources, DebugLog debugLog) {
        this(name, new VmControl(), memory, vcpus, VcpuDiagnosis.NONE, pio, mmio, resources, debugLog);
    }

    /**
     * @param control the sink the devices were built with; this VM binds to it
     * @param diagnosis how the architecture reads a vCPU's whereabouts, for stop reasons and samples
     */
    public Vmm(String name, VmControl control, MmapGuestMemory memory, List<? extends Hypervisor.Vcpu> vcpus,
               VcpuDiagnosis diagnosis, Bus pio, Bus mmio, List<AutoCloseable> resources, DebugLog debugLog) {
        this.name = name;
        this.control = control;
        this.memory = memory;
        this.resources = new ArrayList<>(resources);
        this.debugLog = debugLog;
        for (Hypervisor.Vcpu v : vcpus) {
            vcpuThreads.add(new VcpuThread(this, v, diagnosis, pio, mmio, name));
        }
        control.bind(new VmControl.Stops() {
            @Override
            public void guestStopped(StopReason reason) { Vmm.this.guestStopped(reason); }

            @Override
            public void guestReset() { Vmm.this.guestReset(); }
        });
    }

    /** Tells the guest its console's new size (SIGWINCH on the host terminal). */
    @FunctionalInterface
    public interface ConsoleResizer {
        void resize(int cols, int rows);
    }

    private volatile ConsoleResizer consoleResizer = (c, r) -> { };
    private volatile dev.jkrun.vmm.Balloon balloon;

    /** The VM's balloon, if it has one. */
    public void setBalloon(dev.jkrun.vmm.Balloon b) { balloon = b; }

    public Optional<dev.jkrun.vmm.Balloon> balloon() { return Optional.ofNullable(balloon); }

    public void setConsoleResizer(ConsoleResizer r) { consoleResizer = r; }

    public void resizeConsole(int cols, int rows) {
        if (!stopping) {
            consoleResizer.resize(cols, rows);
        }
    }

    private final List<Runnable> stopRequesters = new CopyOnWriteArrayList<>();
    private volatile boolean guestAsked;
    private volatile Supplier<Optional<String>> panicSource = Optional::empty;

    /** A way to ask the guest to power off (init's control port, the test guests' power button). */
    public void addStopRequester(Runnable r) { stopRequesters.add(r); }

    private volatile Supplier<List<Thread>> deviceThreads = List::of;

    /** Where to learn which device threads are still alive (all devices together), asked before unmapping memory. */
    public void setDeviceThreads(Supplier<List<Thread>> s) { deviceThreads = s; }

    private final List<Supplier<List<String>>> stateReporters = new CopyOnWriteArrayList<>();
    /** Orders {@link #deviceState()} before the release: held while a report reads guest memory. */
    private final java.util.concurrent.locks.ReentrantLock reportLock = new java.util.concurrent.locks.ReentrantLock();
    /** Set under {@link #reportLock} before {@link #releaseAll} closes anything: no report reads memory after. */
    private boolean released;

    /** Adds lines to {@link #deviceState()} (the devices' transports and queues, the interrupt controller). */
    public void addStateReporter(Supplier<List<String>> r) { stateReporters.add(r); }

    /**
     * The devices' and interrupt controller's state, one line each, for diagnosing a guest that waits forever;
     * empty once the VM began releasing its resources. The release waits for a report under way (they read guest
     * memory, which it unmaps); the reporters take no lock that a device holds for long.
     */
    public List<String> deviceState() {
        List<String> out = new ArrayList<>();
        reportLock.lock();
        try {
            if (released) {
                return out;
            }
            for (Supplier<List<String>> r : stateReporters) {
                try {
                    out.addAll(r.get());
                } catch (RuntimeException e) {
                    out.add("(state report failed: " + e + ")");
                }
            }
            return out;
        } finally {
            reportLock.unlock();
        }
    }

    private volatile java.util.function.IntConsumer endOfInterrupt = vector -> { };

    /** Who takes the EOI exits of a split irqchip (its user-space IOAPIC); without one there are none. */
    public void setEndOfInterrupt(java.util.function.IntConsumer c) { endOfInterrupt = c; }

    void endOfInterrupt(int vector) { endOfInterrupt.accept(vector); }

    /** Where a kernel panic message shows up (hvc0's panic watch). */
    public void setPanicSource(Supplier<Optional<String>> s) { panicSource = s; }

    /**
     * Asks the guest to power off in an orderly way. Returns false when this VM has no channel to ask through (the
     * caller then forces it); the request is sent once.
     */
    public boolean requestStop() {
        if (stopRequesters.isEmpty() || stopping) {
            return false;
        }
        if (!guestAsked) {
            guestAsked = true;
            control.markStopRequested();
            LOG.debug("{}: orderly stop requested", name);
            for (Runnable r : stopRequesters) {
                r.run();
            }
        }
        return true;
    }

    /** Whether the host asked the guest to power off. */
    public boolean stopRequested() { return guestAsked; }

    public MmapGuestMemory memory() { return memory; }

    public DebugLog debugLog() { return debugLog; }

    /** Starts every vCPU thread; the BSP runs, APs wait in KVM for INIT/SIPI. */
    public void start() {
        synchronized (startLock) {
            if (reason.get() != null && !started.get()) {
                throw new IllegalStateException("VM stopped before it started: " + reason.get());
            }
            if (!started.compareAndSet(false, true)) {
                throw new IllegalStateException("VM already started");
            }
        }
        Thread supervisor = new Thread(this::supervise, name + "-supervisor");
        supervisor.setDaemon(true);
        supervisor.start();
        try {
            for (VcpuThread t : vcpuThreads) {
                t.start();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            guestStopped(StopReason.of(StopReason.Kind.START_FAILED, "interrupted while starting vCPUs"));
        } finally {
            launched.countDown();
        }
    }

    public boolean stopping() { return stopping; }

    /**
     * Every vCPU's registers now (see {@link VcpuThread#sample()}); a vCPU that does not answer within
     * {@code timeout} (one deadline for all of them) says so.
     */
    public List<String> sampleVcpus(Duration timeout) {
        List<CompletableFuture<String>> fs = new ArrayList<>();
        for (VcpuThread t : vcpuThreads) {
            fs.add(t.sample());
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        List<String> out = new ArrayList<>();
        for (int i = 0; i < fs.size(); i++) {
            try {
                out.add(fs.get(i).get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS));
            } catch (TimeoutException | ExecutionException e) {
                out.add("vCPU " + i + ": no answer within " + timeout.toMillis() + " ms");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        return out;
    }

    public boolean started() { return started.get(); }

    /** Records the guest command's exit status (test exit port, virtio-fs exit ioctl) for the stop that follows. */
    public void reportExitStatus(int status) { control.reportExitStatus(status); }

    public OptionalInt reportedStatus() { return control.exitStatus(); }

    /**
     * The guest asked for a reset (i8042 0xFE): a shutdown with the status init reported; a crash when the console
     * showed a kernel panic first (libkrun's cmdline has panic=-1: a panic resets at once); else a bare reboot.
     */
    public void guestReset() {
        guestEnded(StopReason.of(StopReason.Kind.REBOOT, "guest reset the machine (i8042)"), true);
    }

    /**
     * The guest reset or powered off the machine (x86's i8042, PSCI SYSTEM_RESET or SYSTEM_OFF on aarch64): once its
     * init has reported the workload's exit status, that is how the VM ended, whichever way it went down; a reset
     * after a kernel panic is a crash; otherwise {@code described}.
     */
    public void guestEnded(StopReason described, boolean reset) {
        OptionalInt s = control.exitStatus();
        if (s.isPresent()) {
            guestStopped(StopReason.shutdown(s.getAsInt()));
            return;
        }
        Optional<String> panic = reset ? panicSource.get() : Optional.empty();
        if (panic.isPresent()) {
            guestStopped(StopReason.of(StopReason.Kind.CRASH, "kernel panic: " + panic.get()));
            return;
        }
        guestStopped(described);
    }

    /** First reason wins; safe from any thread, including vCPU and device threads. */
    public void guestStopped(StopReason r) {
        if (reason.compareAndSet(null, r)) {
            LOG.debug("{} stopping: {}", name, r);
            stopping = true;
            stopRequested.countDown();
            // Never started: nothing will run the supervisor, so release here. Under startLock, so that a start()
            // racing this either started first (the supervisor then releases) or sees the reason and refuses:
            // never vCPU threads starting on memory being unmapped.
            boolean neverStarted;
            synchronized (startLock) {
                neverStarted = !started.get();
            }
            if (neverStarted) {
                releaseAll();
                stopped.complete(r);
            }
        }
    }

    public CompletableFuture<StopReason> stopped() { return stopped; }

    private void supervise() {
        try {
            stopRequested.await();
            launched.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        // Kick until every vCPU has left KVM_RUN: a kick can race with a thread that is just entering it, but the
        // signal stays pending then, so one kick per thread suffices; the loop only guards against surprises.
        for (VcpuThread t : vcpuThreads) {
            while (t.thread.isAlive()) {
                t.kick();
                try {
                    t.thread.join(100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
        releaseAll();
        debugLog.flush();
        stopped.complete(reason.get());
    }

    private synchronized void releaseAll() {
        reportLock.lock();
        try {
            released = true;
        } finally {
            reportLock.unlock();
        }
        for (int i = resources.size() - 1; i >= 0; i--) {
            try {
                resources.get(i).close();
            } catch (Exception e) {
                LOG.warn("{}: releasing {} failed: {}", name, resources.get(i), e.toString());
            }
        }
        resources.clear();
        List<Thread> live;
        try {
            live = liveThreads();
        } catch (RuntimeException e) {
            LOG.error("{}: cannot tell whether device threads still run ({}); guest memory stays mapped", name, e.toString());
            memory.retire();
            return;
        }
        if (live.isEmpty()) {
            try {
                memory.close();
            } catch (RuntimeException e) {
                // FFM refuses to unmap while some other thread still does I/O into a view: keep it mapped and say so
                LOG.error("{}: guest memory stays mapped: {}", name, e.toString());
                memory.retire();
            }
            return;
        }
        LOG.error("{}: {} still running after the stop; guest memory stays mapped (its pages released) until they end",
                name, live.stream().map(Thread::getName).toList());
        memory.retire();
        Thread reaper = new Thread(() -> {
            for (Thread t : live) {
                joinUninterruptibly(t);
            }
            memory.close();
            LOG.info("{}: the last thread ended; guest memory unmapped", name);
        }, name + "-reaper");
        reaper.setDaemon(true);
        try {
            reaper.start();
        } catch (RuntimeException | Error e) {
            LOG.error("{}: no reaper thread ({}); guest memory stays mapped", name, e.toString()); // leaked, never unsafe
        }
    }

    /** vCPU and device threads that have not ended (the caller excepted). */
    private List<Thread> liveThreads() {
        List<Thread> live = new ArrayList<>();
        for (VcpuThread t : vcpuThreads) {
            if (t.thread.isAlive() && t.thread != Thread.currentThread()) {
                live.add(t.thread);
            }
        }
        for (Thread t : deviceThreads.get()) {
            if (t.isAlive() && t != Thread.currentThread()) {
                live.add(t);
            }
        }
        return live;
    }

    private static void joinUninterruptibly(Thread t) {
        boolean interrupted = false;
        while (t.isAlive()) {
            try {
                t.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
