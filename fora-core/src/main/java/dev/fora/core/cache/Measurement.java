package dev.fora.core.cache;

import java.util.Objects;

/**
 * A per-image quantity a policy asks the generation to measure, declared in
 * {@link CachePolicy#measurements(GenerationInfo)}. Nothing is measured that no policy
 * declared. Each value is taken over one image's rows (both halves of a guided image, unless
 * the policy decides them separately), so an image's value never depends on the rest of the
 * batch. The changes are relative L1 changes {@code sum|now - before| / sum|before|}; a
 * {@link ResidualMagnitude} is a mean absolute value.
 *
 * <p>A measurement of a block the image did not run at this step (it skipped it with
 * {@link Decision#reuseResidual}) is empty, and the next change compares with the last step
 * at which the image did run it.
 */
public sealed interface Measurement {

    /**
     * Change since the previous step of block {@code block}'s modulated input
     * {@code modulate(LN(x), shift, scale)} before its first branch (TeaCache, Liu et al. 2024).
     * Read with {@link StepContext#measurement} when deciding block {@code block} or later.
     * Needs {@link dev.fora.core.model.DiTModel#modulatedInput}.
     *
     * @param block the block, 0-based
     */
    record ModulatedInputChange(int block) implements Measurement {
    }

    /**
     * Change since the previous step of block {@code block}'s residual (its output minus its
     * input) (First-Block-Cache). Read when deciding blocks after {@code block}.
     *
     * @param block the block, 0-based
     */
    record ResidualChange(int block) implements Measurement {
    }

    /**
     * {@code mean |h_out(to-1) - h_in(from)|} over the image's rows: the magnitude of a block
     * range's residual, taken at the steps at which the image ran the whole range (MagCache's
     * magnitude ratio is the ratio of two of these). Read when deciding blocks at or after
     * {@code range.to()}, or in {@link CacheDecider#endStep(StepContext)}.
     *
     * @param range the block range
     */
    record ResidualMagnitude(BlockRange range) implements Measurement {
        /** Checks the range is given. */
        public ResidualMagnitude {
            Objects.requireNonNull(range, "range");
        }
    }

    /**
     * After each compute of a feature, its change against the feature's previous computed value
     * for that image, passed to {@link CacheDecider#computed} (calibration and magnitude-based
     * methods). Not read through {@link StepContext#measurement}.
     */
    record ComputedChange() implements Measurement {
    }

    /** {@link ModulatedInputChange} of {@code block}. */
    static Measurement modulatedInputChange(int block) {
        return new ModulatedInputChange(block);
    }

    /** {@link ResidualChange} of {@code block}. */
    static Measurement residualChange(int block) {
        return new ResidualChange(block);
    }

    /** {@link ResidualMagnitude} of {@code range}. */
    static Measurement residualMagnitude(BlockRange range) {
        return new ResidualMagnitude(range);
    }

    /** {@link ComputedChange}. */
    static Measurement computedChange() {
        return new ComputedChange();
    }

    /**
     * The relative L1 change {@code sum|now - before| / sum|before|} from its two sums: 0 when
     * both are 0, infinite when only {@code referenceSum} is. The one definition of every change
     * measurement, in a generation and in a recording.
     *
     * @param differenceSum {@code sum|now - before|}
     * @param referenceSum {@code sum|before|}
     */
    public static double relativeChange(double differenceSum, double referenceSum) {
        return referenceSum == 0 ? (differenceSum == 0 ? 0 : Double.POSITIVE_INFINITY) : differenceSum / referenceSum;
    }

    /** The first block whose decisions can read this measurement in the same step. */
    default int firstReadableBlock() {
        if (this instanceof ModulatedInputChange m) {
            return m.block();
        }
        if (this instanceof ResidualChange r) {
            return r.block() + 1;
        }
        if (this instanceof ResidualMagnitude r) {
            return r.range().to();
        }
        throw new IllegalStateException(this + " is not read through StepContext.measurement");
    }
}
