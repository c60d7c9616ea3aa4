package dev.jkrun.vmm.vstate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.vmm.StopReason;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;

/** The control sink: what devices report before and after the VMM binds to it. */
class VmControlTest {
    static final class Recorder implements VmControl.Stops {
        final List<String> seen = new ArrayList<>();

        @Override
        public void guestStopped(StopReason reason) { seen.add("stop " + reason.kind()); }

        @Override
        public void guestReset() { seen.add("reset"); }
    }

    @Test
    void aStopBeforeTheBindingIsHandedOverThen() {
        VmControl c = new VmControl();
        c.reportExitStatus(7);
        c.guestStopped(StopReason.shutdown(7));
        c.guestStopped(StopReason.of(StopReason.Kind.CRASH, "later"));
        Recorder r = new Recorder();
        c.bind(r);
        assertEquals(List.of("stop SHUTDOWN"), r.seen, "the first reason only");
        assertEquals(OptionalInt.of(7), c.exitStatus());
        c.guestReset();
        assertEquals(List.of("stop SHUTDOWN", "reset"), r.seen);
        assertThrows(IllegalStateException.class, () -> c.bind(new Recorder()));
    }

    @Test
    void stopRequestedIsSetByTheVmm() {
        VmControl c = new VmControl();
        assertFalse(c.stopRequested());
        c.markStopRequested();
        assertTrue(c.stopRequested());
    }
}
