package dev.fora.core.calibration;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.Measurement;
import dev.fora.core.cache.PolicyType;
import dev.fora.core.cache.ThresholdTuning;
import dev.fora.core.recording.Recording;
import java.math.BigDecimal;
import java.math.MathContext;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * Calibrates a threshold policy (a {@link PolicyType} with a {@link ThresholdTuning}: the
 * built-in {@code fbcache}, {@code teacache} and {@code magcache}) to a target FLOP-bound
 * speed-up for one model, sampler and step count:
 * <pre>{@code
 * Recording uncached = ...;                        // an uncached run of the calibration images (fora record)
 * SpeedupProbe probe = policy -> runTheCalibrationImages(policy).flopSpeedup();
 * Calibration.Result r = Calibration.of("teacache").targetSpeedup(3).run(uncached, probe);
 * r.spec();                                        // e.g. "teacache:0.127,0.0014,0.91,0.53"
 * }</pre>
 *
 * <h2>How</h2>
 * <ol>
 * <li>For a type that {@link ThresholdTuning#fitsRescaling() fits a rescaling} (TeaCache):
 *     its rescaling polynomial is fitted by least squares to the recording's pairs (x, y) per
 *     image and step: x the type's {@link ThresholdTuning#signal signal} (TeaCache: the relative
 *     change of block 0's modulated input), y the relative change of the residual of the whole
 *     block stack (what a skipped step reuses), so that the accumulated {@code rescale(x)}
 *     estimates the accumulated change of what is reused. Degree 2 by default; the
 *     coefficients are rounded to 4 significant digits.</li>
 * <li>The threshold: starting from a scale read off the recording (the median per-step
 *     {@link ThresholdTuning#stepSignal signal}), it is doubled until the
 *     probe's speed-up reaches the target, then bisected (at most {@link Builder#maxProbes}
 *     probes in all) to the threshold whose speed-up is closest to the target, stopping within
 *     {@link Builder#tolerance} of it. The threshold is then rounded to the fewest significant
 *     digits (at least 3) whose speed-up stays as close, so the spec string is short.</li>
 * </ol>
 * The speed-up of an adaptive policy is a step function of its threshold, and it differs
 * between images, so on images other than the calibration images it lands near, not on, the
 * target: calibrate on enough images (the CLI uses 20) and check on held-out ones.
 */
public final class Calibration {

    private final Builder b;

    private Calibration(Builder b) {
        this.b = b;
    }

    /** The names of the registered policy types calibration can tune, in registry order. */
    public static List<String> policies() {
        return CachePolicies.types().stream().filter(t -> t.tuning().isPresent()).map(PolicyType::name).toList();
    }

    /**
     * Starts a calibration of the named policy type, one of {@link #policies()}: the built-in
     * {@code fbcache}, {@code teacache} or {@code magcache} (whose K, the most steps skipped in
     * a row, is {@link Builder#maxSkips}).
     *
     * @throws IllegalArgumentException for another name
     */
    public static Builder of(String policy) {
        String p = Objects.requireNonNull(policy, "policy").strip();
        PolicyType type = CachePolicies.type(p).filter(t -> t.tuning().isPresent()).orElseThrow(() ->
                new IllegalArgumentException("cannot calibrate \"" + policy + "\"; calibration tunes the threshold of "
                        + String.join(", ", policies())));
        return new Builder(type);
    }

    /** What to calibrate and how closely. */
    public static final class Builder {
        private final PolicyType type;
        private final ThresholdTuning tuning;
        private double target = Double.NaN;
        private int degree = 2;
        private int maxSkips = 3;
        private double tolerance = 0.01;
        private int maxProbes = 24;

        private Builder(PolicyType type) {
            this.type = type;
            this.tuning = type.tuning().orElseThrow();
        }

        /** The FLOP-bound speed-up to reach, {@code > 1} (required). */
        public Builder targetSpeedup(double speedup) {
            if (!(speedup > 1) || !Double.isFinite(speedup)) {
                throw new IllegalArgumentException("the target speed-up must be a finite number > 1, got " + speedup);
            }
            this.target = speedup;
            return this;
        }

        /** The degree of the fitted rescaling polynomial (TeaCache's), 1..4 (default 2). */
        public Builder polynomialDegree(int d) {
            if (d < 1 || d > 4) {
                throw new IllegalArgumentException("the polynomial degree must be 1..4, got " + d);
            }
            this.degree = d;
            return this;
        }

        /** The most steps skipped in a row, for policies that bound it (MagCache's K; default 3). */
        public Builder maxSkips(int k) {
            if (k < 1) {
                throw new IllegalArgumentException("K must be >= 1, got " + k);
            }
            this.maxSkips = k;
            return this;
        }

        /** Stop when the speed-up is within this relative distance of the target (default 0.01). */
        public Builder tolerance(double t) {
            if (!(t > 0 && t < 1)) {
                throw new IllegalArgumentException("the tolerance must lie between 0 and 1, got " + t);
            }
            this.tolerance = t;
            return this;
        }

        /** The most probe runs (default 24). */
        public Builder maxProbes(int n) {
            if (n < 2) {
                throw new IllegalArgumentException("at least 2 probes, got " + n);
            }
            this.maxProbes = n;
            return this;
        }

        /**
         * Calibrates against an uncached recording of the calibration images and a probe that
         * runs them under a policy.
         *
         * @throws CalibrationException if the target cannot be reached
         */
        public Result run(Recording uncached, SpeedupProbe probe) {
            if (Double.isNaN(target)) {
                throw new IllegalStateException("set targetSpeedup first");
            }
            return new Calibration(this).calibrate(Objects.requireNonNull(uncached, "uncached"), Objects.requireNonNull(probe,
                    "probe"));
        }
    }

    /** One probe run: a threshold and the speed-up it gave. */
    public record Probe(double threshold, double speedup) {
    }

    /**
     * The outcome.
     *
     * @param policyName the calibrated policy's name
     * @param targetSpeedup the target
     * @param policy the calibrated policy
     * @param threshold its threshold
     * @param polynomial the fitted rescaling (TeaCache's), ascending powers (empty for the others)
     * @param fitRSquared the polynomial fit's coefficient of determination (NaN for the others)
     * @param fitPoints the (x, y) pairs the polynomial was fitted to
     * @param speedup the FLOP-bound speed-up of the policy on the calibration images
     * @param probes every probe run, in order
     */
    public record Result(String policyName, double targetSpeedup, CachePolicy policy, double threshold, double[] polynomial,
            double fitRSquared, int fitPoints, double speedup, List<Probe> probes) {

        /** The spec string of the calibrated policy. */
        public String spec() {
            return policy.spec().orElseThrow();
        }

        /** {@code speedup / targetSpeedup - 1}. */
        public double relativeError() {
            return speedup / targetSpeedup - 1;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%s: %.3fx on the calibration images (target %.3fx, %d probes)", spec(), speedup,
                    targetSpeedup, probes.size());
        }
    }

    private Result calibrate(Recording uncached, SpeedupProbe probe) {
        ThresholdTuning tuning = b.tuning;
        Measurement signal = tuning.signal(uncached.config());
        if (!uncached.records(signal)) {
            throw new CalibrationException("the recording does not give " + b.type.name() + "'s signal (" + signal
                    + "): this model does not expose it");
        }
        double[] poly = new double[0];
        double r2 = Double.NaN;
        int points = 0;
        if (tuning.fitsRescaling()) {
            double[][] xy = rescalingPairs(uncached, signal);
            points = xy[0].length;
            poly = round(fit(xy[0], xy[1], b.degree), 4);
            r2 = rSquared(xy[0], xy[1], poly);
        }
        double[] rescale = poly;
        ThresholdTuning.Settings settings = new ThresholdTuning.Settings(rescale, b.maxSkips);
        List<Probe> probes = new ArrayList<>();
        java.util.function.DoubleUnaryOperator run = t -> {
            double s = probe.flopSpeedup(tuning.policy(t, settings));
            probes.add(new Probe(t, s));
            return s;
        };
        double target = b.target;
        // bracket: lo below the target (0 never skips), hi at or above it
        double lo = 0;
        double hi = initialScale(uncached, signal, settings);
        double hiSpeed = run.applyAsDouble(hi);
        int doublings = 0;
        while (hiSpeed < target * (1 - b.tolerance)) {
            if (++doublings > 40 || probes.size() >= b.maxProbes) {
                throw new CalibrationException(String.format(Locale.ROOT, "%s does not reach %.3fx on these images: %.3fx at"
                        + " threshold %s = %s%s", b.type.name(), target, hiSpeed, tuning.parameter(), fmt(hi),
                        tuning.ceiling(uncached.config(), settings)));
            }
            lo = hi;
            hi *= 2;
            hiSpeed = run.applyAsDouble(hi);
        }
        Probe best = closest(probes, target);
        while (Math.abs(best.speedup() / target - 1) > b.tolerance && probes.size() < b.maxProbes) {
            double mid = lo == 0 ? hi / 2 : Math.sqrt(lo * hi);
            double s = run.applyAsDouble(mid);
            if (s < target) {
                lo = mid;
            } else {
                hi = mid;
            }
            best = closest(probes, target);
            if (hi / Math.max(lo, 1e-300) < 1 + 1e-6) {
                break;
            }
        }
        // the shortest threshold that is as close as the best one
        double chosen = best.threshold();
        double chosenSpeed = best.speedup();
        double err = Math.abs(chosenSpeed / target - 1);
        for (int digits = 3; digits <= 8; digits++) {
            double rounded = round(chosen, digits);
            if (rounded == chosen) {
                break;
            }
            double s = run.applyAsDouble(rounded);
            if (Math.abs(s / target - 1) <= Math.max(err, b.tolerance)) {
                chosen = rounded;
                chosenSpeed = s;
                break;
            }
        }
        return new Result(b.type.name(), target, tuning.policy(chosen, settings), chosen, rescale, r2, points, chosenSpeed,
                List.copyOf(probes));
    }

    private static Probe closest(List<Probe> probes, double target) {
        Probe best = null;
        for (Probe p : probes) {
            if (best == null || Math.abs(p.speedup() / target - 1) < Math.abs(best.speedup() / target - 1)
                    || Math.abs(p.speedup() / target - 1) == Math.abs(best.speedup() / target - 1) && p.threshold() < best.threshold()) {
                best = p;
            }
        }
        return best;
    }

    /** A threshold of the right order of magnitude: the accumulated signal of about one skipped step. */
    private double initialScale(Recording r, Measurement measurement, ThresholdTuning.Settings settings) {
        List<Double> signal = new ArrayList<>();
        for (int s = 1; s < r.steps(); s++) {
            for (int image = 0; image < r.images(); image++) {
                double v = b.tuning.stepSignal(r.measurement(measurement, s, image), r.measurement(measurement, s - 1, image),
                        settings);
                if (Double.isFinite(v) && v > 0) {
                    signal.add(v);
                }
            }
        }
        if (signal.isEmpty()) {
            return 0.01;
        }
        signal.sort(null);
        return round(signal.get(signal.size() / 2), 3);
    }

    /** The (x, y) pairs of a rescaling fit: the signal (TeaCache's: block 0's modulated-input change), the stack residual change. */
    static double[][] rescalingPairs(Recording r, Measurement signal) {
        List<double[]> pairs = new ArrayList<>();
        for (int s = 1; s < r.steps(); s++) {
            for (int image = 0; image < r.images(); image++) {
                double x = r.measurement(signal, s, image);
                double y = r.stackResidualChange(s, image);
                if (Double.isFinite(x) && Double.isFinite(y)) {
                    pairs.add(new double[] {x, y});
                }
            }
        }
        if (pairs.size() < 3) {
            throw new CalibrationException("the recording has too few steps to fit a rescaling polynomial");
        }
        double[][] xy = new double[2][pairs.size()];
        for (int i = 0; i < pairs.size(); i++) {
            xy[0][i] = pairs.get(i)[0];
            xy[1][i] = pairs.get(i)[1];
        }
        return xy;
    }

    /** Least-squares polynomial of degree {@code d}, ascending powers (normal equations on scaled x). */
    static double[] fit(double[] x, double[] y, int d) {
        double scale = 0;
        for (double v : x) {
            scale = Math.max(scale, Math.abs(v));
        }
        scale = scale == 0 ? 1 : scale;
        int n = d + 1;
        double[][] a = new double[n][n + 1];
        for (int i = 0; i < x.length; i++) {
            double[] p = new double[n];
            p[0] = 1;
            for (int k = 1; k < n; k++) {
                p[k] = p[k - 1] * (x[i] / scale);
            }
            for (int r = 0; r < n; r++) {
                for (int c = 0; c < n; c++) {
                    a[r][c] += p[r] * p[c];
                }
                a[r][n] += p[r] * y[i];
            }
        }
        double[] c = solve(a);
        for (int k = 1; k < n; k++) {
            c[k] /= Math.pow(scale, k);
        }
        return c;
    }

    /** Gaussian elimination with partial pivoting on an augmented matrix. */
    private static double[] solve(double[][] a) {
        int n = a.length;
        for (int col = 0; col < n; col++) {
            int pivot = col;
            for (int r = col + 1; r < n; r++) {
                if (Math.abs(a[r][col]) > Math.abs(a[pivot][col])) {
                    pivot = r;
                }
            }
            double[] t = a[col];
            a[col] = a[pivot];
            a[pivot] = t;
            if (Math.abs(a[col][col]) < 1e-300) {
                throw new CalibrationException("the rescaling polynomial's fit is singular: the recorded changes are all alike;"
                        + " use a lower degree");
            }
            for (int r = 0; r < n; r++) {
                if (r != col) {
                    double f = a[r][col] / a[col][col];
                    for (int c = col; c <= n; c++) {
                        a[r][c] -= f * a[col][c];
                    }
                }
            }
        }
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = a[i][n] / a[i][i];
        }
        return x;
    }

    private static double rSquared(double[] x, double[] y, double[] poly) {
        double mean = Arrays.stream(y).average().orElse(0);
        double ssRes = 0;
        double ssTot = 0;
        for (int i = 0; i < x.length; i++) {
            double f = 0;
            for (int k = poly.length - 1; k >= 0; k--) {
                f = f * x[i] + poly[k];
            }
            ssRes += (y[i] - f) * (y[i] - f);
            ssTot += (y[i] - mean) * (y[i] - mean);
        }
        return ssTot == 0 ? 1 : 1 - ssRes / ssTot;
    }

    private static double[] round(double[] values, int digits) {
        double[] out = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = round(values[i], digits);
        }
        return out;
    }

    /** {@code value} rounded to {@code digits} significant digits. */
    static double round(double value, int digits) {
        if (value == 0 || !Double.isFinite(value)) {
            return value;
        }
        return new BigDecimal(value).round(new MathContext(digits)).doubleValue();
    }

    private static String fmt(double v) {
        return BigDecimal.valueOf(v).stripTrailingZeros().toPlainString();
    }
}
