package dev.fora.core.cache;

import dev.fora.core.sampling.SamplingStep;
import java.util.BitSet;
import java.util.Optional;

/**
 * FORA's static caching interval {@code N} ({@code fora:N}). With the loop index
 * {@code i = K - 1 - step} counting down, a step is a full (refresh) step when it is the
 * first step or {@code i % N == 0}; every other step reuses every block's branch outputs
 * from the last full step, with the gates recomputed from the current conditioning.
 * For {@code K = 50}: {@code N = 2, 3, 5} give 26, 18 and 11 full steps.
 */
public final class StaticIntervalPolicy implements CachePolicy, CacheDecider {

    private final int interval;

    /**
     * @param interval the caching interval {@code N >= 1} ({@code 1} computes every step)
     */
    public StaticIntervalPolicy(int interval) {
        if (interval < 1) {
            throw new IllegalArgumentException("FORA interval must be >= 1, got " + interval);
        }
        this.interval = interval;
    }

    /** The caching interval {@code N}. */
    public int interval() {
        return interval;
    }

    /** Whether {@code step} is a full step: the first one, or one whose loop index is a multiple of N. */
    public boolean isFullStep(SamplingStep step) {
        return step.step() == 0 || step.loopIndex() % interval == 0;
    }

    @Override
    public CacheDecider newDecider(GenerationInfo info) {
        return this;
    }

    @Override
    public Optional<BitSet> fullSteps(GenerationInfo info) {
        int k = info.totalSteps();
        BitSet full = new BitSet(k);
        for (int s = 0; s < k; s++) {
            full.set(s, s == 0 || (k - 1 - s) % interval == 0);
        }
        return Optional.of(full);
    }

    @Override
    public Decision decide(StepContext context) {
        return isFullStep(context.step()) ? Decision.COMPUTE : Decision.REUSE;
    }

    @Override
    public Optional<String> spec() {
        return Optional.of(BuiltInPolicyTypes.FORA.spec(interval));
    }

    @Override
    public String toString() {
        return spec().orElseThrow();
    }
}
