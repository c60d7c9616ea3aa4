package dev.jkrun.krun;

/**
 * Where a program gets jkrun's libkrun: {@code LibKrun krun = Jkrun.libkrun();} instead of
 * {@code LibraryLoader.create(LibKrun.class).load("krun")}. The instance is process-wide, as the native library's
 * context table is.
 */
public final class Jkrun {
    private static final LibKrun INSTANCE = new JkrunLibKrun();

    private Jkrun() {}

    /** jkrun's pure-Java implementation of {@link LibKrun}, shared by the whole process. */
    public static LibKrun libkrun() { return INSTANCE; }
}
