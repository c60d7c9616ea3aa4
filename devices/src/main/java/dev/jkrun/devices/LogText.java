package dev.jkrun.devices;

/** Guest-supplied text on its way into a host log line. */
public final class LogText {
    private LogText() {}

    /**
     * {@code s} with every control or format character written as an escape ({@code \x1b}, {@code \u009b}, ...):
     * a guest must not move the cursor, retitle or recolour the terminal that shows the host's log, nor forge
     * line breaks or reorder text in it.
     */
    public static String escape(CharSequence s) {
        StringBuilder b = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            int type = Character.getType(c);
            boolean bad = type == Character.CONTROL || type == Character.FORMAT || type == Character.LINE_SEPARATOR
                    || type == Character.PARAGRAPH_SEPARATOR;
            if (bad && b == null) {
                b = new StringBuilder(s.length() + 16).append(s, 0, i);
            }
            if (b == null) {
                continue;
            }
            if (!bad) {
                b.append(c);
            } else if (c < 0x80) {
                b.append(String.format("\\x%02x", (int) c));
            } else {
                b.append(String.format("\\u%04x", (int) c));
            }
        }
        return b == null ? s.toString() : b.toString();
    }
}
