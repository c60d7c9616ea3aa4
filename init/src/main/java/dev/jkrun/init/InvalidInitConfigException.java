package dev.jkrun.init;

/** A workload configuration that the guest init would reject; the message starts with the field. */
public final class InvalidInitConfigException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final String field;

    InvalidInitConfigException(String field, String message) {
        super(field + ": " + message);
        this.field = field;
    }

    /** The config field at fault: {@code exec}, {@code arg}, {@code env}, {@code rlimit}... */
    public String field() {
        return field;
    }
}
