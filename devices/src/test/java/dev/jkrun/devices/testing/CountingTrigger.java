package dev.jkrun.devices.testing;

import dev.jkrun.devices.Trigger;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;

/** A {@link Trigger} that counts calls, for tests. */
public final class CountingTrigger implements Trigger {
    private final AtomicInteger count = new AtomicInteger();

    @Override
    public void trigger() { count.incrementAndGet(); }

    public int count() { return count.get(); }

    /** Polls {@code cond} every millisecond until true or {@code timeoutMs} passes; returns the last value. */
    public static boolean await(BooleanSupplier cond, long timeoutMs) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return true;
    }
}
