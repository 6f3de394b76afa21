package dev.fora.core.cache;

/**
 * Consecutive blocks {@code from .. to-1} of a model, whose residual {@code h_out(to-1) - h_in(from)}
 * a policy may cache and reuse in one piece ({@link Decision#reuseResidual(int)}): what
 * First-Block-Cache (blocks {@code 1..depth-1}), TeaCache and MagCache (every block) and
 * Delta-DiT (a front or a rear range) skip. A policy declares the ranges it uses in
 * {@link CachePolicy#blockRanges(GenerationInfo)}.
 *
 * @param from first block of the range, 0-based
 * @param to one past the last block of the range ({@code > from})
 */
public record BlockRange(int from, int to) {

    /** Validates the bounds. */
    public BlockRange {
        if (from < 0 || to <= from) {
            throw new IllegalArgumentException("a block range needs 0 <= from < to, got [" + from + ", " + to + ")");
        }
    }

    /** Number of blocks in the range. */
    public int size() {
        return to - from;
    }

    /** Whether {@code block} lies in the range. */
    public boolean contains(int block) {
        return block >= from && block < to;
    }

    @Override
    public String toString() {
        return "blocks " + from + ".." + (to - 1);
    }
}
