package dev.jkrun.devices.fs;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** A READDIR sink with room for everything that keeps the names it is given. */
final class DirNames implements DirSink {
    final List<String> names = new ArrayList<>();
    /** The cookie after the last entry added (where the guest would continue). */
    long next;

    @Override
    public boolean fits(int nameLength) { return true; }

    @Override
    public boolean plus() { return false; }

    @Override
    public boolean add(long ino, long nextOffset, int type, byte[] name, Entry entry) {
        names.add(new String(name, StandardCharsets.ISO_8859_1));
        next = nextOffset;
        return true;
    }
}
