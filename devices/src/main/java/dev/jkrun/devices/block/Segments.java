package dev.jkrun.devices.block;

import java.nio.ByteBuffer;

/**
 * One request's buffers (a virtio-blk request's guest segments, often 4 KiB each), consumed front to back by an
 * image that maps the request onto its file piece by piece: each piece takes the views of its next bytes, which may
 * span several buffers or be part of one.
 */
final class Segments {
    private final ByteBuffer[] bufs;
    private int next;

    Segments(ByteBuffer[] bufs) {
        this.bufs = bufs;
    }

    static long remaining(ByteBuffer[] bufs) {
        long n = 0;
        for (ByteBuffer b : bufs) {
            n += b.remaining();
        }
        return n;
    }

    /**
     * Views of the next {@code n} bytes (each view a buffer's part, in order), with the buffers' positions moved past
     * them. {@code n} is at most what is left.
     */
    ByteBuffer[] take(long n) {
        int first = skipEmpty(next), last = first;
        long seen = 0;
        while (seen < n) {
            seen += bufs[last].remaining();
            last++;
        }
        ByteBuffer[] views = new ByteBuffer[last - first];
        long left = n;
        for (int i = first; i < last; i++) {
            ByteBuffer b = bufs[i];
            int k = (int) Math.min(left, b.remaining());
            views[i - first] = b.duplicate().limit(b.position() + k);
            b.position(b.position() + k);
            left -= k;
        }
        next = skipEmpty(Math.max(first, last - 1));
        return views;
    }

    private int skipEmpty(int i) {
        while (i < bufs.length && !bufs[i].hasRemaining()) {
            i++;
        }
        return i;
    }
}
