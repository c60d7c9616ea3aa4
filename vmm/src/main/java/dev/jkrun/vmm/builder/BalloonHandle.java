package dev.jkrun.vmm.builder;

import dev.jkrun.devices.virtio.balloon.VirtioBalloon;
import dev.jkrun.vmm.Balloon;
import java.util.Map;

/** {@link Balloon} over the VM's {@link VirtioBalloon}. */
record BalloonHandle(VirtioBalloon device) implements Balloon {
    @Override
    public void setTargetPages(long pages) {
        if (pages < 0 || pages > 0xFFFF_FFFFL) {
            throw new IllegalArgumentException("balloon target must be 0 .. 2^32-1 pages: " + pages);
        }
        device.setTargetPages((int) pages);
    }

    @Override
    public long targetPages() { return device.targetPages(); }

    @Override
    public long actualPages() { return device.actualPages(); }

    @Override
    public long reportedBytes() { return device.reportedBytes(); }

    @Override
    public long discardedBytes() { return device.discardedBytes(); }

    @Override
    public long rejected() { return device.rejected(); }

    @Override
    public Map<Integer, Long> stats() { return device.stats().map(VirtioBalloon.Stats::values).orElse(Map.of()); }

    @Override
    public boolean requestStats() { return device.requestStats(); }
}
