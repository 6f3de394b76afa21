package dev.fora.core.cache;

import java.util.Optional;

/**
 * TaylorSeer ({@code taylorseer:N} or {@code taylorseer:N,O}; Liu et al., "From Reusing to
 * Forecasting: Accelerating Diffusion Models with TaylorSeers", arXiv 2503.06923, ICCV 2025):
 * full steps follow FORA's static interval {@code N}; at each full step the finite
 * differences of every feature are updated recursively, and on cached steps the feature is
 * forecast with a Taylor series of order {@code O} (default 1) instead of reused as is:
 * <pre>
 *   F(s) = sum_{i=0..O} d_i / i! * (s - a)^i        a = the last computed step
 *   d_0 = F(a),  d_i(a) = (d_{i-1}(a) - d_{i-1}(b)) / (a - b)     b = the computed step before a
 * </pre>
 * With the full steps {@code N} apart, {@code d_i} is the {@code i}-th backward difference over
 * {@code N^i}. The policy keeps {@code O + 1} computed values per feature and forecasts with a
 * lower order while fewer are cached (reuse with one). Order 1 is
 * {@code forecast(1 + k, -k)} with {@code k = (s - a) / (a - b)}.
 */
public final class TaylorSeerPolicy implements CachePolicy, CacheDecider {

    private final StaticIntervalPolicy schedule;
    private final int order;

    /** @param interval FORA interval {@code N >= 1} for the full steps; first-order forecasts */
    public TaylorSeerPolicy(int interval) {
        this(interval, 1);
    }

    /**
     * @param interval FORA interval {@code N >= 1} for the full steps
     * @param order the order {@code O >= 1} of the Taylor series
     */
    public TaylorSeerPolicy(int interval, int order) {
        if (order < 1) {
            throw new IllegalArgumentException("TaylorSeer order must be >= 1, got " + order);
        }
        this.schedule = new StaticIntervalPolicy(interval);
        this.order = order;
    }

    /** The FORA interval of the full steps. */
    public int interval() {
        return schedule.interval();
    }

    /** The order of the Taylor series. */
    public int order() {
        return order;
    }

    @Override
    public CacheDecider newDecider(GenerationInfo info) {
        return this;
    }

    @Override
    public int historyLength() {
        return order + 1;
    }

    @Override
    public Decision decide(StepContext context) {
        if (schedule.isFullStep(context.step())) {
            return Decision.COMPUTE;
        }
        int[] computed = context.computedSteps();
        if (computed.length < 2) {
            return Decision.REUSE;
        }
        int s = context.step().step();
        if (order == 1 || computed.length == 2) {
            double k = (double) (s - computed[0]) / (computed[0] - computed[1]);
            return Decision.forecast(1 + k, -k);
        }
        return Decision.forecast(coefficients(computed, s, order));
    }

    /** The forecast coefficients at step {@code s} over values computed at {@code computed} (most recent first). */
    static double[] coefficients(int[] computed, int s, int order) {
        double[][] d = FiniteDifferences.derivatives(computed, order);
        double x = s - computed[0];
        double[] w = new double[d.length];
        for (int i = 0; i < w.length; i++) {
            w[i] = Math.pow(x, i) / FiniteDifferences.factorial(i);
        }
        return FiniteDifferences.combine(d, w);
    }

    @Override
    public Optional<String> spec() {
        return Optional.of("taylorseer:" + schedule.interval() + (order == 1 ? "" : "," + order));
    }

    @Override
    public String toString() {
        return spec().orElseThrow();
    }
}
