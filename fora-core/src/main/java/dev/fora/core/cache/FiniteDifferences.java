package dev.fora.core.cache;

/**
 * TaylorSeer's recursive finite differences, as linear combinations of cached values: the
 * forecasts of {@link TaylorSeerPolicy} and {@link HiCachePolicy} never touch a tensor.
 */
final class FiniteDifferences {

    private FiniteDifferences() {
    }

    /**
     * The derivative estimates at the most recent computed value, as coefficient vectors over
     * the cached values (most recent first). Element {@code i} is {@code d_i} with
     * {@code d_0 = F(s_0)} and, as TaylorSeer updates them at each full step,
     * {@code d_i(s_j) = (d_{i-1}(s_j) - d_{i-1}(s_{j+1})) / (s_j - s_{j+1})}: with computed steps
     * {@code N} apart, {@code d_i} is the {@code i}-th backward difference over {@code N^i}.
     *
     * @param steps the steps the cached values were computed at, most recent first
     * @param order the highest order wanted; fewer are returned if fewer values are cached
     * @return {@code min(order, steps.length - 1) + 1} vectors of length {@code steps.length}
     */
    static double[][] derivatives(int[] steps, int order) {
        int n = steps.length;
        int top = Math.min(order, n - 1);
        double[][] level = new double[n][n];
        for (int j = 0; j < n; j++) {
            level[j][j] = 1;
        }
        double[][] out = new double[top + 1][];
        out[0] = level[0].clone();
        for (int i = 1; i <= top; i++) {
            double[][] next = new double[n - i][n];
            for (int j = 0; j < n - i; j++) {
                double gap = steps[j] - steps[j + 1];
                for (int k = 0; k < n; k++) {
                    next[j][k] = (level[j][k] - level[j + 1][k]) / gap;
                }
            }
            level = next;
            out[i] = level[0].clone();
        }
        return out;
    }

    /**
     * {@code sum_i weights[i] * d_i} over the available orders, as forecast coefficients
     * (length {@code steps.length}).
     */
    static double[] combine(double[][] derivatives, double[] weights) {
        double[] c = new double[derivatives[0].length];
        for (int i = 0; i < derivatives.length; i++) {
            for (int k = 0; k < c.length; k++) {
                c[k] += weights[i] * derivatives[i][k];
            }
        }
        return c;
    }

    /** {@code i!} as a double. */
    static double factorial(int i) {
        double f = 1;
        for (int k = 2; k <= i; k++) {
            f *= k;
        }
        return f;
    }
}
