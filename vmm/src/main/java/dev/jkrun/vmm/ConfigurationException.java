package dev.jkrun.vmm;

/** A configuration that cannot be built; names the offending field so a CLI can print one clear line. */
public final class ConfigurationException extends RuntimeException {
    private final String field;

    public ConfigurationException(String field, String problem) {
        super(field + ": " + problem);
        this.field = field;
    }

    public String field() { return field; }
}
