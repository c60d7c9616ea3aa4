package dev.jkrun.vmm.testing;

import java.io.PrintWriter;
import java.util.Arrays;
import org.junit.platform.engine.discovery.DiscoverySelectors;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;
import org.junit.platform.engine.TestExecutionResult;

/**
 * Runs the named test classes where there is a JVM and the built classes but no Maven (inside the nested aarch64
 * host: tests/aarch64.sh), one line per test ("PASS"/"FAIL"/"skip"), then the summary; exits 1 when any failed or
 * none ran.
 */
public final class RunTestClasses {
    private RunTestClasses() {}

    public static void main(String[] classes) {
        LauncherDiscoveryRequest request = LauncherDiscoveryRequestBuilder.request()
                .selectors(Arrays.stream(classes).map(DiscoverySelectors::selectClass).toList()).build();
        Launcher launcher = LauncherFactory.create();
        SummaryGeneratingListener summary = new SummaryGeneratingListener();
        TestExecutionListener lines = new TestExecutionListener() {
            @Override
            public void executionSkipped(TestIdentifier id, String reason) {
                System.out.println("skip - " + id.getDisplayName() + ": " + reason);
            }

            @Override
            public void executionFinished(TestIdentifier id, TestExecutionResult result) {
                if (!id.isTest()) {
                    return;
                }
                String name = id.getLegacyReportingName();
                switch (result.getStatus()) {
                    case SUCCESSFUL -> System.out.println("PASS " + name);
                    default -> System.out.println("FAIL " + name + ": "
                            + result.getThrowable().map(Throwable::toString).orElse(result.getStatus().toString()));
                }
            }
        };
        launcher.execute(request, summary, lines);
        TestExecutionSummary s = summary.getSummary();
        s.printFailuresTo(new PrintWriter(System.out), 20);
        System.out.printf("%d passed, %d failed, %d skipped%n", s.getTestsSucceededCount(),
                s.getTestsFailedCount(), s.getTestsSkippedCount() + s.getTestsAbortedCount());
        System.exit(s.getTestsFailedCount() > 0 || s.getTestsSucceededCount() == 0 ? 1 : 0);
    }
}
