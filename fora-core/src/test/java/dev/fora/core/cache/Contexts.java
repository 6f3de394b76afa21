package dev.fora.core.cache;

import java.util.OptionalDouble;

/** A hand-made {@link StepContext} for asking a policy directly, without a model. */
record Contexts(int step, int totalSteps, int block, int depth, Branch branch, int[] computedSteps)
        implements StepContext {

    static Decision ask(CacheDecider decider, int step, int totalSteps, int block, Branch branch, int... computed) {
        return decider.decide(new Contexts(step, totalSteps, block, 4, branch, computed));
    }

    @Override
    public double timestep() {
        return 1000.0 * loopIndex() / totalSteps;
    }

    @Override
    public OptionalDouble signal(Signal signal) {
        throw new IllegalStateException("no signals here");
    }
}
