package dev.fora.core.cache;

import dev.fora.core.engine.Generation;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.Set;

/**
 * MagCache-style skipping ({@code magcache:T,K}; after Ma et al., "MagCache: Fast Video
 * Generation with Magnitude-Aware Cache", arXiv 2506.09045, 2025). MagCache observes that the
 * magnitude ratio {@code gamma = |r_s| / |r_{s-1}|} of the model's residual
 * {@code r = h_out(depth-1) - h_in(0)} at successive steps is close to 1 and changes slowly,
 * and that skipping a step with the cached residual costs an error of about
 * {@code |1 - prod gamma|}. Per image, on each step after a computed one it multiplies the
 * ratios since that compute, adds {@code |1 - prod gamma|} to an accumulated error, and skips
 * every block with the cached residual ({@link Decision#reuseResidual}) while the error stays
 * below {@code T} and at most {@code K} steps have been skipped in a row; otherwise the step is
 * computed and both restart.
 *
 * <p>One difference from MagCache: MagCache reads the ratios from a curve calibrated offline
 * on one prompt; here each image measures them online
 * ({@link Measurement#residualMagnitude(BlockRange) residualMagnitude} of the whole stack at
 * its computed steps) and uses the per-step ratio between its last two computed steps,
 * {@code (|r_a| / |r_b|)^(1 / (a - b))}, for the steps it skips. So the first two steps always
 * compute, and so does the last one.
 */
public final class MagCachePolicy implements CachePolicy {

    private final double threshold;
    private final int maxSkips;

    /**
     * @param threshold the accumulated error {@code T >= 0} below which a step is skipped
     * @param maxSkips the most steps {@code K >= 1} skipped in a row
     */
    public MagCachePolicy(double threshold, int maxSkips) {
        this.threshold = SpecNumbers.checkThreshold("magcache threshold T", threshold);
        if (maxSkips < 1) {
            throw new IllegalArgumentException("magcache K (the most steps skipped in a row) must be >= 1, got " + maxSkips);
        }
        this.maxSkips = maxSkips;
    }

    /** The threshold {@code T}. */
    public double threshold() {
        return threshold;
    }

    /** The most steps skipped in a row, {@code K}. */
    public int maxSkips() {
        return maxSkips;
    }

    private static BlockRange stack(GenerationInfo info) {
        return new BlockRange(0, info.config().depth());
    }

    @Override
    public Set<Measurement> measurements(GenerationInfo info) {
        return Set.of(Measurement.residualMagnitude(stack(info)));
    }

    @Override
    public Set<BlockRange> blockRanges(GenerationInfo info) {
        return Set.of(stack(info));
    }

    @Override
    public int historyLength() {
        return 0;
    }

    @Override
    public CacheDecider newDecider(GenerationInfo info) {
        BlockRange all = stack(info);
        Measurement magnitude = Measurement.residualMagnitude(all);
        return new CacheDecider() {
            private double ratio = Double.NaN;
            private double lastMagnitude = Double.NaN;
            private int lastComputed = -1;
            private double accumulatedRatio = 1;
            private double accumulatedError;
            private int skipped;

            @Override
            public Decision decide(StepContext ctx) {
                if (ctx.block() != 0 || ctx.branchIndex() != 0) {
                    return Decision.COMPUTE;
                }
                if (!ctx.step().isLast() && !Double.isNaN(ratio) && ctx.residualComputedAt(all).isPresent()) {
                    accumulatedRatio *= ratio;
                    accumulatedError += Math.abs(1 - accumulatedRatio);
                    skipped++;
                    if (accumulatedError < threshold && skipped <= maxSkips) {
                        return Decision.reuseResidual(all.to());
                    }
                }
                accumulatedRatio = 1;
                accumulatedError = 0;
                skipped = 0;
                return Decision.COMPUTE;
            }

            @Override
            public void endStep(StepContext ctx) {
                OptionalDouble m = ctx.measurement(magnitude);
                if (m.isEmpty()) {
                    return;
                }
                int s = ctx.step().step();
                double now = m.getAsDouble();
                if (lastComputed >= 0 && lastMagnitude > 0 && now > 0) {
                    ratio = Math.pow(now / lastMagnitude, 1.0 / (s - lastComputed));
                }
                lastMagnitude = now;
                lastComputed = s;
            }
        };
    }

    @Override
    public Optional<String> spec() {
        return Optional.of(BuiltInPolicyTypes.MAGCACHE.spec(threshold, maxSkips));
    }

    @Override
    public String toString() {
        return spec().orElseThrow();
    }
}
