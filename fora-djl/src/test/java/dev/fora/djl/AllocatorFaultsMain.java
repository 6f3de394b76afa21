package dev.fora.djl;

import com.sun.jna.Native;
import com.sun.jna.Pointer;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Runs in a JVM of its own for {@link NativeAllocatorTest}: what glibc's malloc does with a freed
 * 8 MiB block, the size of a libtorch temporary. It mallocs, touches and frees one such block,
 * then does the same again and prints the minor page faults of its thread during the second
 * round. Under glibc's defaults the block is mapped afresh and faulted in page by page each
 * time; kept, the second round reuses the first one's pages. With argument {@code keep} it calls
 * {@link NativeAllocator#keepFreedMemory()} first.
 */
final class AllocatorFaultsMain {

    private static final long BLOCK = 8L << 20;

    private AllocatorFaultsMain() {
    }

    public static void main(String[] args) throws Exception {
        boolean keep = args[0].equals("keep");
        System.out.println("applied " + (keep && NativeAllocator.keepFreedMemory()));
        touchAndFree();
        long before = minorFaults();
        touchAndFree();
        System.out.println("faults " + (minorFaults() - before));
    }

    private static void touchAndFree() {
        long address = Native.malloc(BLOCK);
        if (address == 0) {
            throw new OutOfMemoryError("malloc of " + BLOCK + " bytes");
        }
        new Pointer(address).setMemory(0, BLOCK, (byte) 1);
        Native.free(address);
    }

    /** Field 10 of /proc/thread-self/stat: minor faults of the calling thread. */
    private static long minorFaults() throws Exception {
        String stat = Files.readString(Path.of("/proc/thread-self/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[7]);
    }
}
