package dev.fora.core.cache;

/**
 * A per-image quantity a policy asks the generation to measure, declared in
 * {@link CachePolicy#measurements()}. Nothing is measured that no policy declared. Each value
 * is a relative L1 change {@code sum|now - before| / sum|before|} over one image's rows (both
 * halves of a guided image, unless the policy decides them separately), so an image's value
 * never depends on the rest of the batch.
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

    /** {@link ComputedChange}. */
    static Measurement computedChange() {
        return new ComputedChange();
    }

    /** The first block whose decisions can read this measurement in the same step. */
    default int firstReadableBlock() {
        if (this instanceof ModulatedInputChange m) {
            return m.block();
        }
        if (this instanceof ResidualChange r) {
            return r.block() + 1;
        }
        throw new IllegalStateException(this + " is not read through StepContext.measurement");
    }
}
