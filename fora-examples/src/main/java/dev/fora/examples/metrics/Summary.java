package dev.fora.examples.metrics;

import java.util.Arrays;
import java.util.List;

/**
 * Order statistics of repeated timings: median, quartiles (linear interpolation between
 * closest ranks, numpy's default) and extremes.
 *
 * @param median the median
 * @param q1 the first quartile
 * @param q3 the third quartile
 * @param min the smallest value
 * @param max the largest value
 * @param count number of values
 */
public record Summary(double median, double q1, double q3, double min, double max, int count) {

    /** Summarises at least one value. */
    public static Summary of(double... values) {
        if (values.length == 0) {
            throw new IllegalArgumentException("no values to summarise");
        }
        double[] v = values.clone();
        Arrays.sort(v);
        return new Summary(quantile(v, 0.5), quantile(v, 0.25), quantile(v, 0.75), v[0], v[v.length - 1], v.length);
    }

    /** Summarises at least one value. */
    public static Summary of(List<Double> values) {
        return of(values.stream().mapToDouble(Double::doubleValue).toArray());
    }

    /** Interquartile range {@code q3 - q1}. */
    public double iqr() {
        return q3 - q1;
    }

    /** Quantile {@code p} of sorted values, linear interpolation. */
    static double quantile(double[] sorted, double p) {
        double pos = p * (sorted.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = Math.min(lo + 1, sorted.length - 1);
        double frac = pos - lo;
        return sorted[lo] + frac * (sorted[hi] - sorted[lo]);
    }
}
