package dev.fora.core.engine;

import dev.fora.core.cache.BlockRange;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.cache.Measurement;
import dev.fora.core.cache.StepContext;
import dev.fora.core.model.BranchSpec;
import dev.fora.core.sampling.SamplingStep;
import java.util.OptionalDouble;
import java.util.OptionalInt;

/**
 * The context of one decider call: made for that call, bound to that decider, never repointed.
 * Its measurements and cached steps are that decider's own.
 *
 * @param branchAt the branch index, or -1 at the end of a step
 */
record DeciderContext(DeciderState<?> state, SamplingStep step, int block, int branchAt) implements StepContext {

    /** The context of {@link dev.fora.core.cache.CacheDecider#endStep}: one past the last block, no branch. */
    static DeciderContext endOf(DeciderState<?> state) {
        return new DeciderContext(state, state.step, state.declarations.info.config().depth(), -1);
    }

    @Override
    public BranchSpec branch() {
        return info().config().layout().branch(branchIndex());
    }

    @Override
    public int branchIndex() {
        if (branchAt < 0) {
            throw new IllegalStateException("the step has ended: there is no branch being decided");
        }
        return branchAt;
    }

    @Override
    public GenerationInfo info() {
        return state.declarations.info;
    }

    @Override
    public OptionalDouble measurement(Measurement measurement) {
        if (!state.declarations.measured.contains(measurement)) {
            throw new IllegalStateException(measurement + " was not declared in the policy's measurements(info)"
                    + (measurement instanceof Measurement.ComputedChange ? " (and it is passed to CacheDecider.computed)" : "")
                    + ", so it is not measured");
        }
        if (block < measurement.firstReadableBlock()) {
            throw new IllegalStateException(measurement + " is measured before block " + measurement.firstReadableBlock()
                    + "; it is not available when deciding block " + block);
        }
        Double v = state.values.get(measurement);
        return v == null || Double.isNaN(v) ? OptionalDouble.empty() : OptionalDouble.of(v);
    }

    @Override
    public int[] computedSteps() {
        return state.computedSteps(info().config().feature(block, branchIndex()));
    }

    @Override
    public OptionalInt residualComputedAt(BlockRange range) {
        if (!state.declarations.keeps(range)) {
            throw new IllegalStateException(range + " was not declared in the policy's blockRanges(); declared: "
                    + state.declarations.ranges);
        }
        return state.residualComputedAt(range);
    }

    /** Where a decision was asked, for errors. */
    String where() {
        return "step " + step.step() + " (loop index " + step.loopIndex() + ", timestep " + step.timestep() + "), block "
                + block + (branchAt < 0 ? "" : ", branch " + info().config().layout().branch(branchAt)) + ", " + state.name;
    }
}
