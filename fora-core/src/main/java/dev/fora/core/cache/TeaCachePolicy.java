package dev.fora.core.cache;

import java.util.Arrays;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.Set;

/**
 * TeaCache ({@code teacache:T} or {@code teacache:T,C0,C1,...,Cn}; Liu et al., "Timestep
 * Embedding Tells: It's Time to Cache for Video Diffusion Model", arXiv 2411.19108, CVPR 2025):
 * the change of block 0's modulated input {@code modulate(LN(x), shift, scale)} between steps
 * ({@link Measurement#modulatedInputChange(int) modulatedInputChange(0)}), rescaled by a
 * polynomial fitted offline, estimates how much the model output changes. Per image, the
 * rescaled changes are accumulated since the last computed step; while the sum stays below
 * {@code T} the image skips every block and adds its cached residual of the whole stack
 * {@code h_out(depth-1) - h_in(0)} ({@link Decision#reuseResidual}); when it passes {@code T}
 * the step is computed and the sum restarts from 0. The first and the last step always
 * compute, as in TeaCache.
 *
 * <p>The rescaling is {@code rescale(x) = C0 + C1 x + ... + Cn x^n} (ascending powers;
 * TeaCache's published lists are for {@code numpy.poly1d}, highest power first); without
 * coefficients it is {@code x}. A rescaled value below 0 counts as 0. The polynomial and the
 * threshold depend on the model, the sampler and the step count:
 * {@code fora calibrate --policy teacache} fits both
 * ({@link dev.fora.core.calibration.Calibration}).
 */
public final class TeaCachePolicy implements CachePolicy {

    private final double threshold;
    private final double[] rescale;

    /** @param threshold the accumulated change {@code T >= 0} below which a step is skipped; no rescaling */
    public TeaCachePolicy(double threshold) {
        this(threshold, new double[0]);
    }

    /**
     * @param threshold the accumulated rescaled change {@code T >= 0} below which a step is skipped
     * @param rescale polynomial coefficients, ascending powers; empty for no rescaling
     */
    public TeaCachePolicy(double threshold, double[] rescale) {
        this.threshold = SpecNumbers.checkThreshold("teacache threshold T", threshold);
        for (double c : rescale) {
            if (!Double.isFinite(c)) {
                throw new IllegalArgumentException("teacache polynomial coefficients must be finite: " + Arrays.toString(rescale));
            }
        }
        this.rescale = rescale.clone();
    }

    /** The threshold {@code T}. */
    public double threshold() {
        return threshold;
    }

    /** The rescaling polynomial, ascending powers (a copy; empty: identity). */
    public double[] rescale() {
        return rescale.clone();
    }

    /** {@code rescale(x)}, at least 0. */
    public double rescaled(double x) {
        if (rescale.length == 0) {
            return Math.max(0, x);
        }
        double y = 0;
        for (int i = rescale.length - 1; i >= 0; i--) {
            y = y * x + rescale[i];
        }
        return Math.max(0, y);
    }

    @Override
    public Set<Measurement> measurements(GenerationInfo info) {
        return Set.of(Measurement.modulatedInputChange(0));
    }

    @Override
    public Set<BlockRange> blockRanges(GenerationInfo info) {
        return Set.of(new BlockRange(0, info.config().depth()));
    }

    @Override
    public int historyLength() {
        return 0;
    }

    @Override
    public CacheDecider newDecider(GenerationInfo info) {
        int depth = info.config().depth();
        BlockRange all = new BlockRange(0, depth);
        return new CacheDecider() {
            private double accumulated;

            @Override
            public Decision decide(StepContext ctx) {
                if (ctx.block() != 0 || ctx.branchIndex() != 0) {
                    return Decision.COMPUTE;
                }
                OptionalDouble change = ctx.measurement(Measurement.modulatedInputChange(0));
                if (!ctx.step().isLast() && change.isPresent() && ctx.residualComputedAt(all).isPresent()) {
                    accumulated += rescaled(change.getAsDouble());
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
        Object[] arguments = new Object[1 + rescale.length];
        arguments[0] = threshold;
        for (int i = 0; i < rescale.length; i++) {
            arguments[1 + i] = rescale[i];
        }
        return Optional.of(BuiltInPolicyTypes.TEACACHE.spec(arguments));
    }

    @Override
    public String toString() {
        return spec().orElseThrow();
    }
}
