package dev.fora.examples.engine;

import dev.fora.core.engine.GenerationStats;
import dev.fora.examples.metrics.Summary;
import java.util.ArrayList;
import java.util.List;

/**
 * Cache statistics of a run over one or more batches: compute fraction and FLOP-bound
 * speed-up averaged over the batches (every batch runs the same steps), peak cache bytes the
 * largest of any batch, and the measured wall time of its full and of its cached steps.
 *
 * @param computeFraction computed branch evaluations / all branch evaluations
 * @param flopComputeFraction computed branch FLOPs / branch FLOPs of an uncached run
 * @param fullSteps steps in which everything was computed (of the first batch)
 * @param peakCacheBytes the most bytes any batch's feature cache held
 * @param fullStepMs median wall time of a step that computed everything (NaN if none)
 * @param cachedStepMs median wall time of a step that computed nothing (NaN if none)
 */
public record RunStats(double computeFraction, double flopComputeFraction, int fullSteps, long peakCacheBytes,
        double fullStepMs, double cachedStepMs) {

    /** {@code 1 / flopComputeFraction}: the branch-FLOP speed-up bound. */
    public double flopSpeedup() {
        return 1.0 / flopComputeFraction;
    }

    /** A cached step's wall time as a fraction of a full step's (NaN without both kinds). */
    public double cachedStepCost() {
        return cachedStepMs / fullStepMs;
    }

    /** Accumulates batches. */
    static final class Builder {
        private double compute;
        private double flops;
        private int fullSteps = -1;
        private long peak;
        private int batches;
        private final List<Double> fullMs = new ArrayList<>();
        private final List<Double> cachedMs = new ArrayList<>();

        /** A batch's statistics and the wall time of each of its steps. */
        void add(GenerationStats s, long[] stepNanos) {
            compute += s.computeFraction();
            flops += s.flopComputeFraction();
            if (fullSteps < 0) {
                fullSteps = s.fullSteps();
            }
            peak = Math.max(peak, s.peakCacheBytes());
            batches++;
            for (int step = 0; step < stepNanos.length; step++) {
                if (s.isFullStep(step)) {
                    fullMs.add(stepNanos[step] / 1e6);
                } else if (s.isCachedStep(step)) {
                    cachedMs.add(stepNanos[step] / 1e6);
                }
            }
        }

        RunStats build() {
            int n = Math.max(batches, 1);
            return new RunStats(compute / n, flops / n, Math.max(fullSteps, 0), peak, median(fullMs), median(cachedMs));
        }

        private static double median(List<Double> values) {
            return values.isEmpty() ? Double.NaN : Summary.of(values).median();
        }
    }
}
