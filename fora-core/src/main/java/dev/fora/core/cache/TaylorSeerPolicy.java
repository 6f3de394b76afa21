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
public final class TaylorSeerPolicy extends IntervalForecastPolicy {

    /** @param interval FORA interval {@code N >= 1} for the full steps; first-order forecasts */
    public TaylorSeerPolicy(int interval) {
        this(interval, 1);
    }

    /**
     * @param interval FORA interval {@code N >= 1} for the full steps
     * @param order the order {@code O >= 1} of the Taylor series
     */
    public TaylorSeerPolicy(int interval, int order) {
        super("TaylorSeer", interval, order);
    }

    @Override
    double[] coefficients(int[] computed, int s) {
        if (order() == 1 || computed.length == 2) {
            double k = (double) (s - computed[0]) / (computed[0] - computed[1]);
            return new double[] {1 + k, -k};
        }
        return coefficients(computed, s, order());
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
        return Optional.of(order() == 1 ? BuiltInPolicyTypes.TAYLORSEER.spec(interval())
                : BuiltInPolicyTypes.TAYLORSEER.spec(interval(), order()));
    }
}
