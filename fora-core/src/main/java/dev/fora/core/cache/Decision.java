package dev.fora.core.cache;

import java.util.Arrays;

/**
 * A policy's answer for one image's (step, block, branch): compute the branch, reuse the last
 * computed value, or forecast a value as a linear combination of past computed values.
 */
public final class Decision {

    /** What the core does with the branch. */
    public enum Kind {
        /** Run the branch through the model (and store the result in the cache). */
        COMPUTE,
        /** Take the most recently computed value from the cache. */
        REUSE,
        /** Combine past computed values with the decision's coefficients. */
        FORECAST
    }

    /** Run the branch. */
    public static final Decision COMPUTE = new Decision(Kind.COMPUTE, new double[0]);

    /** Reuse the most recently computed value. */
    public static final Decision REUSE = new Decision(Kind.REUSE, new double[] {1.0});

    private final Kind kind;
    private final double[] coefficients;

    private Decision(Kind kind, double[] coefficients) {
        this.kind = kind;
        this.coefficients = coefficients;
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
        return new Decision(Kind.FORECAST, coefficients.clone());
    }

    /** The kind of decision. */
    public Kind kind() {
        return kind;
    }

    /** Number of cached values the decision reads: 0 for COMPUTE, 1 for REUSE, the coefficients of a FORECAST. */
    public int terms() {
        return coefficients.length;
    }

    /** Coefficients over past computed values, most recent first (a copy; empty for COMPUTE). */
    public double[] coefficients() {
        return coefficients.clone();
    }

    /** Equal kinds with equal coefficients: images whose decisions are equal are computed together. */
    @Override
    public boolean equals(Object o) {
        return o instanceof Decision d && d.kind == kind && Arrays.equals(d.coefficients, coefficients);
    }

    @Override
    public int hashCode() {
        return 31 * kind.hashCode() + Arrays.hashCode(coefficients);
    }

    @Override
    public String toString() {
        return kind == Kind.FORECAST ? "FORECAST" + Arrays.toString(coefficients) : kind.name();
    }
}
