package dev.jkrun.memory;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Which accessor implements guest memory. {@link #preferred()} is FFM wherever it is available (JDK 22+ with the
 * multi-release part of this jar) and Unsafe otherwise; {@code -Djkrun.memory=unsafe|ffm} overrides it.
 */
public enum GuestMemoryImpl {
    /** {@code sun.misc.Unsafe} behind jkrun's own bounds checks: JDK 17-21. */
    UNSAFE,
    /**
     * {@code java.lang.foreign} segments (JDK 22+): the JDK checks every access against the segment's bounds and,
     * for mapped RAM, that its shared arena is still open, so a close racing an access cannot reach unmapped memory.
     * The exception is a virtqueue's ring windows over mapped RAM, which jkrun checks alone, as with Unsafe, for
     * speed: like every access with Unsafe they rely on the VMM unmapping only after joining its threads.
     */
    FFM;

    /** The system property that overrides {@link #preferred()}: {@code unsafe} or {@code ffm}. */
    public static final String PROPERTY = "jkrun.memory";

    public boolean isAvailable() { return this == UNSAFE || Ffm.BACKEND != null; }

    /** The implementation new guest memory gets: the {@value #PROPERTY} property, else FFM if available. */
    public static GuestMemoryImpl preferred() {
        String p = System.getProperty(PROPERTY, "").trim();
        if (p.isEmpty()) {
            return FFM.isAvailable() ? FFM : UNSAFE;
        }
        GuestMemoryImpl impl;
        try {
            impl = valueOf(p.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("-D" + PROPERTY + "=" + p + ": expected unsafe or ffm");
        }
        impl.backend();   // an explicit choice that cannot be honoured fails here, not silently
        return impl;
    }

    /** The implementations this JVM has, Unsafe first. */
    public static List<GuestMemoryImpl> available() {
        List<GuestMemoryImpl> l = new ArrayList<>();
        for (GuestMemoryImpl i : values()) {
            if (i.isAvailable()) {
                l.add(i);
            }
        }
        return List.copyOf(l);
    }

    MemoryBackend backend() {
        if (this == UNSAFE) {
            return MemoryBackend.UNSAFE;
        }
        if (Ffm.BACKEND == null) {
            throw new UnsupportedOperationException("FFM guest memory is not available here: " + Ffm.WHY);
        }
        return Ffm.BACKEND;
    }

    /** Loaded on first use. Only JDK 22+ sees META-INF/versions/22 of a multi-release jar; FFM is final there. */
    private static final class Ffm {
        static final MemoryBackend BACKEND;
        static final String WHY;

        static {
            MemoryBackend b = null;
            String why = null;
            if (Runtime.version().feature() < 22) {
                why = "needs JDK 22 or later, this is " + Runtime.version();
            } else {
                try {
                    b = (MemoryBackend) Class.forName("dev.jkrun.memory.SegmentBackend").getDeclaredConstructor().newInstance();
                } catch (ReflectiveOperationException | LinkageError e) {
                    why = "the jar's META-INF/versions/22 part is missing (built on a JDK before 22?): " + e;
                }
            }
            BACKEND = b;
            WHY = why;
        }
    }
}
