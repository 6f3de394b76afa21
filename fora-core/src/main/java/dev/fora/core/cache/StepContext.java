package dev.fora.core.cache;

import java.util.OptionalDouble;

/**
 * The read-only view a policy decides from, for one (step, block, branch). The core asks
 * lazily, in forward order (block 0 attention, block 0 MLP, block 1 attention, ...), so
 * signals measured earlier in the same step are already available. The object is valid only
 * during the {@link CacheDecider#decide} call.
 */
public interface StepContext {

    /** Sampler step, 0 = first (noisiest). */
    int step();

    /** Number of sampler steps {@code K} of the generation. */
    int totalSteps();

    /** FORA's loop index {@code i = K - 1 - step}, counting down to 0. */
    default int loopIndex() {
        return totalSteps() - 1 - step();
    }

    /** The original diffusion timestep the model is fed at this step. */
    double timestep();

    /** The block being decided, 0-based. */
    int block();

    /** Number of blocks. */
    int depth();

    /** The branch being decided. */
    Branch branch();

    /**
     * A signal measured in this step.
     *
     * @return the relative change, or empty at the first step (nothing to compare with)
     * @throws IllegalStateException if the policy did not declare the signal in
     *     {@link CachePolicy#signals()}, or if it is not measured yet at this block
     */
    OptionalDouble signal(Signal signal);

    /**
     * The steps at which the cached values of this (block, branch) were computed, most recent
     * first; at most {@link CachePolicy#historyLength()} entries. Empty if nothing is cached,
     * in which case only {@link Decision#COMPUTE} is valid.
     */
    int[] computedSteps();

    /** Whether a computed value of this (block, branch) is in the cache. */
    default boolean hasCachedValue() {
        return computedSteps().length > 0;
    }
}
