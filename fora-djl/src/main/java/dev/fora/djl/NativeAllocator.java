package dev.fora.djl;

import com.sun.jna.Function;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Platform;
import java.util.Map;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Tells glibc's {@code malloc} to keep the memory libtorch frees, so that the next step's
 * temporaries reuse pages that are already mapped.
 *
 * <p>Under glibc's defaults a step of a DiT frees more than twice its largest temporary at the
 * top of the heap, glibc hands it back to the system, and the next step touches it again: one
 * page fault per 4 KB, about 10 us each on a VM. On the shipped model at 64 rows that made a
 * per-block schedule's masked step take 1.3-2x as long, and the uncached forward 10-20 % longer
 * (alternating runs; docs/policies-tuned.md).
 *
 * <p>{@link #keepFreedMemory()} sets at run time what the environment variables
 * {@code MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824} would: blocks up to
 * 32 MiB come from the heap, and up to 1 GiB of freed heap stays mapped. The process then keeps
 * its peak native working set (weights of 32 MiB or more stay separate mappings). Opt-in, as
 * it helps some workloads more than others (measure on your host): {@code fora ... --malloc
 * keep} applies it; a library user calls it once, before the first generation.
 */
public final class NativeAllocator {

    private static final Logger LOG = LoggerFactory.getLogger(NativeAllocator.class);

    /** glibc's mallopt parameter numbers (malloc.h). */
    private static final int M_TRIM_THRESHOLD = -1;
    private static final int M_MMAP_THRESHOLD = -3;

    /** The largest mmap threshold glibc accepts on 64-bit hosts (DEFAULT_MMAP_THRESHOLD_MAX). */
    static final int MMAP_THRESHOLD = 32 << 20;
    /** Freed memory at the top of a heap that glibc keeps rather than returns. */
    static final int TRIM_THRESHOLD = 1 << 30;

    private static volatile boolean applied;

    private NativeAllocator() {
    }

    /**
     * Applies the settings unless the process runs on something other than glibc, or the
     * environment already chose the allocator's settings ({@code MALLOC_*}, {@code GLIBC_TUNABLES},
     * {@code LD_PRELOAD}): the user's choice wins. Idempotent and thread-safe.
     *
     * @return whether the settings are in effect
     */
    public static synchronized boolean keepFreedMemory() {
        if (applied) {
            return true;
        }
        String chosen = environmentSettings(System.getenv());
        if (chosen != null) {
            LOG.info("native allocator left as the environment set it ({})", chosen);
            return false;
        }
        if (!Platform.isLinux()) {
            return false;
        }
        try {
            NativeLibrary libc = NativeLibrary.getInstance(Platform.C_LIBRARY_NAME);
            libc.getFunction("gnu_get_libc_version"); // only glibc has it: musl's mallopt does nothing
            Function mallopt = libc.getFunction("mallopt");
            // the threshold first: setting the trim threshold alone freezes the mmap threshold at 128 KB
            boolean ok = mallopt.invokeInt(new Object[] {M_MMAP_THRESHOLD, MMAP_THRESHOLD}) == 1
                    && mallopt.invokeInt(new Object[] {M_TRIM_THRESHOLD, TRIM_THRESHOLD}) == 1;
            applied = ok;
            LOG.info("native allocator: glibc keeps freed memory ({})", ok ? describe() : "mallopt refused");
            return ok;
        } catch (LinkageError e) {
            // no glibc symbol (musl), or JNA's own native part cannot load (e.g. a noexec temp directory)
            LOG.info("native allocator left as is: {}", e.toString());
            return false;
        }
    }

    /**
     * The allocator settings the process runs with, for a benchmark to record beside its numbers:
     * the environment's ({@code NAME=value ...}), else those {@link #keepFreedMemory()} applied,
     * else {@code default}.
     */
    public static String describe() {
        String env = environmentSettings(System.getenv());
        if (env != null) {
            return env;
        }
        return applied ? "mallopt mmap_threshold=" + MMAP_THRESHOLD + " trim_threshold=" + TRIM_THRESHOLD : "default";
    }

    /**
     * The environment variables that set the native allocator (glibc's {@code MALLOC_*} and
     * {@code GLIBC_TUNABLES}, a preloaded library, tcmalloc's {@code TCMALLOC_*}) as sorted
     * {@code NAME=value} pairs, or null when there are none.
     */
    static String environmentSettings(Map<String, String> env) {
        String set = env.keySet().stream().filter(k -> k.startsWith("MALLOC_") || k.startsWith("TCMALLOC_")
                || k.equals("GLIBC_TUNABLES") || k.equals("LD_PRELOAD")).sorted()
                .map(k -> k + "=" + env.get(k)).collect(Collectors.joining(" "));
        return set.isEmpty() ? null : set;
    }
}
