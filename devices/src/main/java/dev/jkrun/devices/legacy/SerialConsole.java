package dev.jkrun.devices.legacy;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.runtime.EventLoop;
import dev.jkrun.devices.virtio.DeviceThreads;
import dev.jkrun.devices.virtio.console.PortInput;
import dev.jkrun.devices.virtio.console.PortOutput;
import dev.jkrun.devices.virtio.console.WatchedFd;
import java.io.IOException;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A 16550A UART ({@link Uart16550}) and its host side: guest output goes to a {@link PortOutput}, host input comes
 * from a {@link PortInput}, both on one device {@link EventLoop} thread, so the vCPU thread that writes THR never waits
 * for the host (libkrun's serial writes and flushes on the vCPU thread). Input is read only into the room the receive
 * FIFO has; output waits for room on the host descriptor (epoll), never in write(2). The interrupt goes to
 * {@code irqChanged} (the owner drives the ISA line from {@link Uart16550#interruptPending()}).
 */
public final class SerialConsole implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(SerialConsole.class);
    private static final int CHUNK = 4096;
    /** How long a stop waits for the host to take the guest's last output. */
    static final long FLUSH_MILLIS = 200;

    private final String name;
    private final PortInput input;
    private final PortOutput output;
    private final Uart16550 uart;
    private final DeviceThreads threads;
    private final EventLoop loop;
    private final RateLimitedLog failures;
    private final byte[] rxBuf = new byte[Uart16550.FIFO_SIZE];
    private final byte[] txBuf = new byte[CHUNK];
    private WatchedFd room;
    private boolean inputEnded, txScheduled;

    /** A UART named {@code name} (threads and log) on {@code input}/{@code output}; {@link #start} begins the I/O. */
    public SerialConsole(String name, PortInput input, PortOutput output, Runnable irqChanged) {
        this.name = name;
        this.input = input;
        this.output = output;
        this.failures = new RateLimitedLog(LOG, name);
        this.threads = new DeviceThreads(name);
        this.loop = new EventLoop(name);
        this.uart = new Uart16550(new Uart16550.Host() {
            @Override
            public void interruptChanged() { irqChanged.run(); }

            @Override
            public void txReady() { loop.execute(SerialConsole.this::drainTx); }

            @Override
            public void rxRoomAvailable() { loop.execute(SerialConsole.this::fillRx); }
        });
    }

    /** The bus device. */
    public Uart16550 uart() { return uart; }

    /** Starts the loop thread and the input. */
    public void start() {
        loop.start(threads);
        loop.execute(() -> {
            input.start(loop, threads, name + "-in", this::fillRx);
            fillRx();
        });
    }

    /** The threads still alive (the loop's, an input helper's). */
    public List<Thread> liveThreads() { return threads.alive(); }

    /** Moves host input into the receive FIFO while it has room; otherwise stops watching the input. */
    private void fillRx() {
        if (inputEnded) {
            return;
        }
        int roomNow = uart.rxRoom();
        if (roomNow == 0) {
            input.want(false); // the guest reads first; rxRoomAvailable brings us back
            return;
        }
        int n;
        try {
            n = input.read(rxBuf, 0, Math.min(roomNow, rxBuf.length));
        } catch (IOException | RuntimeException e) {
            failures.warn("{}: input failed: {}", name, e.toString());
            n = -1;
        }
        if (n < 0) {
            LOG.debug("{}: input reached end of file", name);
            inputEnded = true;
            input.want(false);
            return;
        }
        if (n > 0) {
            uart.receive(rxBuf, 0, n); // never more than the room it reported, which only the guest grows
        }
        input.want(uart.rxRoom() > 0);
        if (n > 0 && uart.rxRoom() > 0) {
            loop.execute(this::fillRx); // a stream input hands its chunk only once: look again
        }
    }

    /** Moves guest output to the host until none waits or the host takes no more now. */
    private void drainTx() {
        while (!DeviceThreads.stopRequested()) {
            int n = uart.peekTx(txBuf, 0, txBuf.length);
            if (n == 0) {
                break;
            }
            int k;
            try {
                k = output.writeSome(txBuf, 0, n);
            } catch (IOException | RuntimeException e) {
                failures.warn("{}: output failed: {}", name, e.toString());
                k = n; // dropped, as a line nobody listens to
            }
            uart.consumeTx(k);
            if (k < n) {
                awaitRoom();
                break;
            }
        }
        try {
            output.flush();
        } catch (IOException e) {
            failures.warn("{}: flush failed: {}", name, e.toString());
        }
    }

    private void flushRest() {
        long deadline = System.nanoTime() + FLUSH_MILLIS * 1_000_000L;
        try {
            while (System.nanoTime() - deadline < 0) {
                int n = uart.peekTx(txBuf, 0, txBuf.length);
                if (n == 0) {
                    break;
                }
                int k = output.writeSome(txBuf, 0, n);
                uart.consumeTx(k);
                if (k == 0) {
                    Thread.sleep(1);
                }
            }
            output.flush();
        } catch (IOException | RuntimeException e) {
            LOG.debug("{}: last output not written: {}", name, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void awaitRoom() {
        if (output.pollFd() >= 0 && room == null) {
            room = new WatchedFd(loop, output.pollFd(), events -> {
                room.interest(0);
                drainTx();
            });
        }
        if (room != null && room.pollable()) {
            room.interest(EventLoop.OUT);
        } else if (!txScheduled) {
            txScheduled = true;
            loop.schedule(10, () -> {
                txScheduled = false;
                drainTx();
            });
        }
    }

    /**
     * Stops the loop and the input, then hands the host what the guest wrote last (a stopping guest's final lines:
     * at most the transmit buffer, and only what the descriptor takes without waiting past {@link #FLUSH_MILLIS});
     * the caller's descriptors stay open.
     */
    @Override
    public void close() {
        loop.stop();
        flushRest();
        input.stop();
        if (room != null) {
            room.close();
            room = null;
        }
        loop.close();
        input.close();
        output.close();
        failures.flush();
    }
}
