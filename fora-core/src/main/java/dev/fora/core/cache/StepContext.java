package dev.fora.core.cache;

import dev.fora.core.model.BranchSpec;
import dev.fora.core.sampling.SamplingStep;
import java.util.OptionalDouble;
import java.util.OptionalInt;

/**
 * The read-only view one image's decider decides from, for one (step, block, branch). The
 * core asks lazily, in forward order (block 0's branches, then block 1's, ...), so
 * measurements taken earlier in the same step are available. Valid only during the call it
 * is passed to.
 */
public interface StepContext {

    /** The sampler step: its index, FORA's loop index and the timestep the model is fed. */
    SamplingStep step();

    /** The block being decided, 0-based ({@code depth} in {@link CacheDecider#endStep(StepContext)}). */
    int block();

    /**
     * The branch being decided, as the model's layout names it.
     *
     * @throws IllegalStateException in {@link CacheDecider#endStep(StepContext)}
     */
    BranchSpec branch();

    /**
     * The index of {@link #branch()} in the block layout.
     *
     * @throws IllegalStateException in {@link CacheDecider#endStep(StepContext)}
     */
    int branchIndex();

    /** What the generation is: steps, model layout and sizes, batch. */
    GenerationInfo info();

    /**
     * A measurement of this image in this step.
     *
     * @return the relative change, or empty at the first step (nothing to compare with)
     * @throws IllegalStateException if the policy did not declare it, or if it is not measured
     *     yet at this block
     */
    OptionalDouble measurement(Measurement measurement);

    /**
     * The steps at which this image's cached values of this (block, branch) were computed, most
     * recent first; at most {@link CachePolicy#historyLength()} entries. Empty if nothing is
     * cached, in which case only {@link Decision#COMPUTE} is valid.
     *
     * @throws IllegalStateException in {@link CacheDecider#endStep(StepContext)}
     */
    int[] computedSteps();

    /**
     * The step at which this image's cached residual of {@code range} was computed, or empty if
     * none is cached (then {@link Decision#reuseResidual} of that range is not valid).
     *
     * @throws IllegalStateException if the policy did not declare the range in
     *     {@link CachePolicy#blockRanges(GenerationInfo)}
     */
    OptionalInt residualComputedAt(BlockRange range);
}
