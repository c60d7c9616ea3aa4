package dev.jkrun.cli;

import java.util.ArrayList;
import java.util.List;

/** A tiny option reader: {@code --name value}, {@code --name=value}, flags, and everything after {@code --}. */
final class Args {
    private final String[] args;
    private int pos;
    private String pendingValue;
    private final List<String> afterDashes = new ArrayList<>();

    Args(String[] args) { this.args = args; }

    /** The next option name (without a value), or null at the end or at {@code --}. */
    String nextOption() {
        if (pos >= args.length) {
            return null;
        }
        String a = args[pos++];
        if (a.equals("--")) {
            while (pos < args.length) {
                afterDashes.add(args[pos++]);
            }
            return null;
        }
        if (!a.startsWith("--")) {
            throw new Main.UsageException("unexpected argument '" + a + "'");
        }
        int eq = a.indexOf('=');
        if (eq > 0) {
            pendingValue = a.substring(eq + 1);
            return a.substring(0, eq);
        }
        pendingValue = null;
        return a;
    }

    String value(String option) {
        if (pendingValue != null) {
            String v = pendingValue;
            pendingValue = null;
            return v;
        }
        if (pos >= args.length) {
            throw new Main.UsageException(option + " needs a value");
        }
        return args[pos++];
    }

    int intValue(String option) {
        String v = value(option);
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new Main.UsageException(option + " needs a number, got '" + v + "'");
        }
    }

    List<String> afterDashes() { return afterDashes; }
}
