package dev.fora.core.cache;

import dev.fora.core.model.DiTConfig;

/**
 * What calibration ({@link dev.fora.core.calibration.Calibration}, {@code fora calibrate}) needs
 * to tune the threshold of a threshold policy, carried by its {@link PolicyType}: the signal the
 * policy accumulates over the steps it skips and compares with its threshold, and the policy
 * for a threshold. Calibration reads the signal off an uncached recording to find the
 * threshold's scale, then searches the threshold with real cached runs.
 */
public interface ThresholdTuning {

    /**
     * Settings of one calibration besides the threshold.
     *
     * @param rescale the fitted rescaling polynomial of the signal, ascending powers (empty when
     *     the type does not {@link #fitsRescaling()})
     * @param maxSkips the most steps skipped in a row, for policies that bound it
     */
    record Settings(double[] rescale, int maxSkips) {

        /** Copies {@code rescale}. */
        public Settings {
            rescale = rescale.clone();
        }

        @Override
        public double[] rescale() {
            return rescale.clone();
        }
    }

    /** The tuned parameter as the usage line names it, e.g. {@code T}. */
    String parameter();

    /** The measurement the policy's signal comes from, for a model of this shape. */
    Measurement signal(DiTConfig config);

    /**
     * What one step adds to the policy's accumulated signal, from {@link #signal}'s value at this
     * step and at the step before ({@code NaN} where there is none).
     */
    double stepSignal(double now, double before, Settings settings);

    /**
     * Whether the policy rescales its signal with a polynomial ({@link Settings#rescale()}) that
     * calibration fits by least squares to the relative change of the whole block stack's
     * residual, what a skipped step reuses (TeaCache). No by default.
     */
    default boolean fitsRescaling() {
        return false;
    }

    /** The policy with {@code threshold}. */
    CachePolicy policy(double threshold, Settings settings);

    /**
     * Why a target speed-up may be out of reach for this policy on a model of this shape, as a
     * clause calibration appends to its error ({@code " (First-Block-Cache computes block 0 at
     * every step: ...)"}); empty by default.
     */
    default String ceiling(DiTConfig config, Settings settings) {
        return "";
    }
}
