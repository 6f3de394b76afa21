package dev.fora.core.cache;

import java.util.Arrays;

/**
 * A policy's answer for one image's (step, block, branch): compute the branch, reuse the last
 * computed value, forecast a value as a linear combination of past computed values, or skip a
 * whole range of blocks by adding their cached residual.
 */
public final class Decision {

    /** What the core does with the branch. */
    public enum Kind {
        /** Run the branch through the model (and store the result in the cache). */
        COMPUTE,
        /** Take the most recently computed value from the cache. */
        REUSE,
        /** Combine past computed values with the decision's coefficients. */
        FORECAST,
        /**
         * Skip the blocks {@code block .. toBlock-1}: add the image's cached residual of that
         * {@link BlockRange} to its tokens instead of running any of their branches. Only at the
         * first branch of a block; every branch of the skipped blocks is counted as reused.
         */
        REUSE_RESIDUAL
    }

    /** Run the branch. */
    public static final Decision COMPUTE = new Decision(Kind.COMPUTE, new double[0], -1);

    /** Reuse the most recently computed value. */
    public static final Decision REUSE = new Decision(Kind.REUSE, new double[] {1.0}, -1);

    private final Kind kind;
    private final double[] coefficients;
    private final int toBlock;

    private Decision(Kind kind, double[] coefficients, int toBlock) {
        this.kind = kind;
        this.coefficients = coefficients;
        this.toBlock = toBlock;
    }

    /**
     * Forecast {@code sum_k coefficients[k] * value_k}, where {@code value_0} is the most
     * recently computed value of the feature, {@code value_1} the one before, and so on
     * (see {@link StepContext#computedSteps()}). The policy must declare a
     * {@link CachePolicy#historyLength()} of at least {@code coefficients.length}.
     */
    public static Decision forecast(double... coefficients) {
        if (coefficients.length == 0) {
            throw new IllegalArgumentException("a forecast needs at least one coefficient");
        }
        for (double c : coefficients) {
            if (!Double.isFinite(c)) {
                throw new IllegalArgumentException("forecast coefficients must be finite: " + Arrays.toString(coefficients));
            }
        }
        return new Decision(Kind.FORECAST, coefficients.clone(), -1);
    }

    /**
     * Skip the blocks from the one being decided up to {@code toBlock - 1}: the image's tokens
     * become {@code h + (h_out(toBlock-1) - h_in(block))}, the residual of that
     * {@link BlockRange} as computed at the last step at which this image ran every branch of it
     * ({@link StepContext#residualComputedAt}). Valid only when deciding the first branch of a
     * block, for a range the policy declared in {@link CachePolicy#blockRanges(GenerationInfo)}
     * and of which the image has a cached residual. Nothing of the skipped blocks is called for
     * the image, and its decider is not asked about them.
     *
     * @param toBlock one past the last skipped block
     */
    public static Decision reuseResidual(int toBlock) {
        if (toBlock < 1) {
            throw new IllegalArgumentException("a skipped range ends after block 0 at the earliest, got toBlock " + toBlock);
        }
        return new Decision(Kind.REUSE_RESIDUAL, new double[0], toBlock);
    }

    /** The kind of decision. */
    public Kind kind() {
        return kind;
    }

    /**
     * Number of cached feature values the decision reads: 0 for COMPUTE and REUSE_RESIDUAL, 1
     * for REUSE, the coefficients of a FORECAST.
     */
    public int terms() {
        return coefficients.length;
    }

    /** Coefficients over past computed values, most recent first (a copy; empty for COMPUTE and REUSE_RESIDUAL). */
    public double[] coefficients() {
        return coefficients.clone();
    }

    /**
     * One past the last block a {@link Kind#REUSE_RESIDUAL} skips.
     *
     * @throws IllegalStateException for any other kind
     */
    public int toBlock() {
        if (kind != Kind.REUSE_RESIDUAL) {
            throw new IllegalStateException(this + " skips no blocks");
        }
        return toBlock;
    }

    /** Equal kinds with equal coefficients (and range end): images whose decisions are equal are computed together. */
    @Override
    public boolean equals(Object o) {
        return o instanceof Decision d && d.kind == kind && d.toBlock == toBlock && Arrays.equals(d.coefficients, coefficients);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * kind.hashCode() + toBlock) + Arrays.hashCode(coefficients);
    }

    @Override
    public String toString() {
        return switch (kind) {
            case FORECAST -> "FORECAST" + Arrays.toString(coefficients);
            case REUSE_RESIDUAL -> "REUSE_RESIDUAL(to block " + toBlock + ")";
            default -> kind.name();
        };
    }
}
