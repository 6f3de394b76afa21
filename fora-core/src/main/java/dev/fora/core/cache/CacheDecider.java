package dev.fora.core.cache;

import dev.fora.core.sampling.SamplingStep;

/**
 * The per-generation, per-image half of a {@link CachePolicy}: answers one (step, block,
 * branch) at a time for one image. The generation makes one decider per image (or per CFG
 * half, see {@link CachePolicy#separateGuidanceHalves()}), so state kept here (an accumulated
 * change, a counter) is that image's alone, and an image's decisions never depend on the
 * rest of its batch. Used by one generation on one thread.
 *
 * <p>Per step the generation calls {@link #beginStep}, then {@link #decide} for every block
 * and branch in forward order (with {@link #computed} after each compute when the policy
 * declared {@link Measurement.ComputedChange}; not for the blocks a
 * {@link Decision#reuseResidual} skips), then {@link #endStep(StepContext)}.
 */
@FunctionalInterface
public interface CacheDecider {

    /** A step starts; nothing is decided yet. */
    default void beginStep(SamplingStep step) {
    }

    /** Decides what to do with the feature described by {@code context}, for this image. */
    Decision decide(StepContext context);

    /**
     * A feature this decider chose to compute has been computed; {@code change} is its
     * relative L1 change against its previous computed value for this image. Called only if the
     * policy declared {@link Measurement.ComputedChange} and a previous value exists.
     */
    default void computed(StepContext context, double change) {
    }

    /**
     * The step's output is complete; {@code context} reads every measurement of the step
     * (its {@link StepContext#block()} is the model's depth, one past the last block; it has
     * no branch, and {@link StepContext#step()} is the step that ended).
     */
    default void endStep(StepContext context) {
    }
}
