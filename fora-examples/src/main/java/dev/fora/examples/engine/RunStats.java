package dev.fora.examples.engine;

import dev.fora.core.cache.GenerationStats;

/**
 * Cache statistics of a run over one or more batches: compute fraction and FLOP-bound
 * speed-up averaged over the batches (every batch runs the same steps), peak cache bytes the
 * largest of any batch.
 *
 * @param computeFraction computed branch evaluations / all branch evaluations
 * @param flopComputeFraction computed branch FLOPs / branch FLOPs of an uncached run
 * @param fullSteps steps in which everything was computed (of the first batch)
 * @param peakCacheBytes the most bytes any batch's feature cache held
 */
public record RunStats(double computeFraction, double flopComputeFraction, int fullSteps, long peakCacheBytes) {

    /** {@code 1 / flopComputeFraction}: the block-FLOP speed-up bound. */
    public double flopSpeedup() {
        return 1.0 / flopComputeFraction;
    }

    /** Accumulates batches. */
    static final class Builder {
        private double compute;
        private double flops;
        private int fullSteps = -1;
        private long peak;
        private int batches;

        void add(GenerationStats s) {
            compute += s.computeFraction();
            flops += s.flopComputeFraction();
            if (fullSteps < 0) {
                fullSteps = s.fullSteps();
            }
            peak = Math.max(peak, s.peakCacheBytes());
            batches++;
        }

        RunStats build() {
            int n = Math.max(batches, 1);
            return new RunStats(compute / n, flops / n, Math.max(fullSteps, 0), peak);
        }
    }
}
