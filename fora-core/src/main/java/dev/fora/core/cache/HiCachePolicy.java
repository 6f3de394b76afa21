package dev.fora.core.cache;

import java.util.Arrays;
import java.util.Optional;

/**
 * HiCache ({@code hicache:N}, {@code hicache:N,O} or {@code hicache:N,O,S}; Feng et al., "HiCache:
 * Training-free Acceleration of Diffusion Models via Hermite Polynomial-based Feature Caching",
 * arXiv 2508.16984, 2025): TaylorSeer's schedule and finite differences, with the monomials of
 * the Taylor series replaced by dual-scaled physicists' Hermite polynomials. The paper reports
 * it ahead of TaylorSeer at equal speed-up (e.g. 5.55x on FLUX.1-dev while matching the
 * baseline). Full steps follow FORA's static interval {@code N}; on cached steps
 * <pre>
 *   F(s) = d_0 + sum_{i=1..O} d_i / i! * Ht_i(s - a)          a = the last computed step
 *   Ht_i(x) = S^i * H_i(S * x),   H_0 = 1, H_1(x) = 2x, H_{i+1}(x) = 2x H_i(x) - 2i H_{i-1}(x)
 * </pre>
 * with TaylorSeer's recursive differences {@code d_i} ({@link TaylorSeerPolicy}) and the
 * contraction {@code 0 < S < 1} (default 0.5, the paper's). {@code Ht_1(x) = 2 S^2 x}: at
 * {@code S = sqrt(1/2)} the first-order forecast is TaylorSeer's; a smaller {@code S} damps
 * the extrapolation, a larger one amplifies it, and the higher orders stay bounded. Defaults:
 * order 2, {@code S = 0.5} (the paper's contraction). On this project's shipped model
 * {@code S = 0.5} is worse than TaylorSeer, while {@code S = 0.75} with order 3
 * ({@code hicache:5,3,0.75}) is the best built-in at 4.55x (see the README's measured
 * results). While fewer than {@code O + 1} values are cached the order is lower (reuse with one).
 */
public final class HiCachePolicy extends IntervalForecastPolicy {

    /** The default order. */
    public static final int DEFAULT_ORDER = 2;

    /** The default contraction factor. */
    public static final double DEFAULT_SIGMA = 0.5;

    private final double sigma;
    /** How many arguments the spec names: 1 ({@code hicache:N}), 2 ({@code hicache:N,O}) or 3. */
    private final int specArguments;

    /**
     * @param interval FORA interval {@code N >= 1} for the full steps
     * @param order the order {@code O >= 1} of the expansion
     * @param sigma the contraction {@code 0 < S < 1}
     */
    public HiCachePolicy(int interval, int order, double sigma) {
        this(interval, order, sigma, 3);
    }

    private HiCachePolicy(int interval, int order, double sigma, int specArguments) {
        super("HiCache", interval, order);
        if (!(sigma > 0 && sigma < 1)) {
            throw new IllegalArgumentException("HiCache contraction S must lie strictly between 0 and 1, got " + sigma);
        }
        this.sigma = sigma;
        this.specArguments = specArguments;
    }

    /** {@code hicache:N} with the default order and contraction. */
    public static HiCachePolicy of(int interval) {
        return new HiCachePolicy(interval, DEFAULT_ORDER, DEFAULT_SIGMA, 1);
    }

    /** {@code hicache:N,O} with the default contraction. */
    public static HiCachePolicy of(int interval, int order) {
        return new HiCachePolicy(interval, order, DEFAULT_SIGMA, 2);
    }

    /** The contraction factor {@code S}. */
    public double sigma() {
        return sigma;
    }

    @Override
    double[] coefficients(int[] computed, int s) {
        return coefficients(computed, s, order(), sigma);
    }

    /** The forecast coefficients at step {@code s} over values computed at {@code computed} (most recent first). */
    static double[] coefficients(int[] computed, int s, int order, double sigma) {
        double[][] d = FiniteDifferences.derivatives(computed, order);
        double x = s - computed[0];
        double[] w = new double[d.length];
        w[0] = 1;
        for (int i = 1; i < w.length; i++) {
            w[i] = Math.pow(sigma, i) * hermite(i, sigma * x) / FiniteDifferences.factorial(i);
        }
        return FiniteDifferences.combine(d, w);
    }

    /** The physicists' Hermite polynomial {@code H_n(x)}. */
    static double hermite(int n, double x) {
        double previous = 1;
        if (n == 0) {
            return previous;
        }
        double current = 2 * x;
        for (int k = 1; k < n; k++) {
            double next = 2 * x * current - 2 * k * previous;
            previous = current;
            current = next;
        }
        return current;
    }

    @Override
    public Optional<String> spec() {
        Object[] arguments = {interval(), order(), sigma};
        return Optional.of(BuiltInPolicyTypes.HICACHE.spec(Arrays.copyOf(arguments, specArguments)));
    }
}
