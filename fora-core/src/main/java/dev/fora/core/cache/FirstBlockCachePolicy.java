package dev.fora.core.cache;

import java.util.Optional;
import java.util.OptionalDouble;
import java.util.Set;

/**
 * First-Block-Cache ({@code fbcache:T}; ParaAttention's FBCache, 2025, also the
 * {@code FirstBlockCache} of diffusers and cache-dit): every step computes block 0, whose
 * residual change tells how much the whole step would change. Per image, the relative L1
 * change of block 0's residual ({@link Measurement#residualChange(int) residualChange(0)}) is
 * accumulated over the steps since that image last computed the other blocks; while the sum
 * stays below {@code T}, the image skips blocks {@code 1..depth-1} at once and adds their
 * cached residual {@code h_out(depth-1) - h_out(0)} from its last compute
 * ({@link Decision#reuseResidual}); otherwise it computes them, stores the new residual and
 * restarts the sum from 0. The first step, and any step without a measured change, computes.
 * {@code T = 0} never skips. The cache holds the one residual per image, no branch outputs.
 */
public final class FirstBlockCachePolicy implements CachePolicy {

    private final double threshold;

    /** @param threshold the accumulated relative change {@code T >= 0} below which blocks 1.. are skipped */
    public FirstBlockCachePolicy(double threshold) {
        this.threshold = SpecNumbers.checkThreshold("fbcache threshold T", threshold);
    }

    /** The threshold {@code T}. */
    public double threshold() {
        return threshold;
    }

    @Override
    public Set<Measurement> measurements(GenerationInfo info) {
        return Set.of(Measurement.residualChange(0));
    }

    @Override
    public Set<BlockRange> blockRanges(GenerationInfo info) {
        int depth = info.config().depth();
        return depth < 2 ? Set.of() : Set.of(new BlockRange(1, depth));
    }

    @Override
    public int historyLength() {
        return 0;
    }

    @Override
    public CacheDecider newDecider(GenerationInfo info) {
        int depth = info.config().depth();
        BlockRange rest = depth < 2 ? null : new BlockRange(1, depth);
        return new CacheDecider() {
            private double accumulated;

            @Override
            public Decision decide(StepContext ctx) {
                if (rest == null || ctx.block() != 1 || ctx.branchIndex() != 0) {
                    return Decision.COMPUTE;
                }
                OptionalDouble change = ctx.measurement(Measurement.residualChange(0));
                if (change.isPresent() && ctx.residualComputedAt(rest).isPresent()) {
                    accumulated += change.getAsDouble();
                    if (accumulated < threshold) {
                        return Decision.reuseResidual(depth);
                    }
                }
                accumulated = 0;
                return Decision.COMPUTE;
            }
        };
    }

    @Override
    public Optional<String> spec() {
        return Optional.of(BuiltInPolicyTypes.FBCACHE.spec(threshold));
    }

    @Override
    public String toString() {
        return spec().orElseThrow();
    }
}
