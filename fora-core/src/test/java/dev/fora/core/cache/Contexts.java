package dev.fora.core.cache;

import dev.fora.core.model.BranchSpec;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.sampling.SamplingStep;
import java.util.OptionalDouble;
import java.util.OptionalInt;

/** A hand-made {@link StepContext} for asking a policy directly, without a model. */
record Contexts(SamplingStep step, int block, int branchIndex, GenerationInfo info, int[] computedSteps)
        implements StepContext {

    /** A DiT of depth 4 ({@link dev.fora.core.model.BlockLayout#DIT}: branch 0 attn, 1 mlp). */
    static final DiTConfig CONFIG = DiTConfig.classConditional(8, 4, 2, 32, 4, 4, 10, true);

    /** One image, unguided, {@link #CONFIG}; the timestep falls linearly with the loop index. */
    static Decision ask(CacheDecider decider, int step, int totalSteps, int block, int branch, int... computed) {
        SamplingStep s = new SamplingStep(step, totalSteps, 1000.0 * (totalSteps - 1 - step) / totalSteps);
        return decider.decide(new Contexts(s, block, branch, new GenerationInfo(totalSteps, CONFIG, 1, false, 1), computed));
    }

    @Override
    public BranchSpec branch() {
        return info.config().layout().branch(branchIndex);
    }

    @Override
    public OptionalDouble measurement(Measurement measurement) {
        throw new IllegalStateException("no measurements here");
    }

    @Override
    public OptionalInt residualComputedAt(BlockRange range) {
        throw new IllegalStateException("no block ranges here");
    }
}
