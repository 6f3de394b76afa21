package dev.fora.core.cache;

import dev.fora.core.sampling.SamplingStep;
import java.util.BitSet;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * Decorator that computes everything during the first {@code warmupSteps} and the last
 * {@code cooldownSteps} steps and lets the wrapped policy decide the steps in between
 * ({@code warmup:K,<spec>} and {@code cooldown:K,<spec>}). Early steps fix the image layout
 * and late steps its details, so both are where reuse hurts most. The wrapped decider still
 * sees every step begin and end and every computed change, so its state stays current.
 */
public final class WarmupCooldown implements CachePolicy {

    private final int warmupSteps;
    private final int cooldownSteps;
    private final CachePolicy inner;

    /**
     * @param warmupSteps steps at the start that compute everything ({@code >= 0})
     * @param cooldownSteps steps at the end that compute everything ({@code >= 0})
     * @param inner the policy for the other steps
     */
    public WarmupCooldown(int warmupSteps, int cooldownSteps, CachePolicy inner) {
        if (warmupSteps < 0 || cooldownSteps < 0) {
            throw new IllegalArgumentException("warm-up and cool-down step counts must be >= 0, got "
                    + warmupSteps + " and " + cooldownSteps);
        }
        this.warmupSteps = warmupSteps;
        this.cooldownSteps = cooldownSteps;
        this.inner = Objects.requireNonNull(inner, "inner");
    }

    /** Computes the first {@code steps} steps, then follows {@code inner}. */
    public static WarmupCooldown warmup(int steps, CachePolicy inner) {
        return new WarmupCooldown(steps, 0, inner);
    }

    /** Computes the last {@code steps} steps, before that follows {@code inner}. */
    public static WarmupCooldown cooldown(int steps, CachePolicy inner) {
        return new WarmupCooldown(0, steps, inner);
    }

    /** The wrapped policy. */
    public CachePolicy inner() {
        return inner;
    }

    @Override
    public CacheDecider newDecider(GenerationInfo info) {
        CacheDecider delegate = inner.newDecider(info);
        if (delegate == null) {
            throw new IllegalStateException("policy " + inner + " returned no decider (newDecider gave null)");
        }
        int total = info.totalSteps();
        return new CacheDecider() {
            @Override
            public void beginStep(SamplingStep step) {
                delegate.beginStep(step);
            }

            @Override
            public Decision decide(StepContext context) {
                int s = context.step().step();
                return s < warmupSteps || s >= total - cooldownSteps ? Decision.COMPUTE : delegate.decide(context);
            }

            @Override
            public void computed(StepContext context, double change) {
                delegate.computed(context, change);
            }

            @Override
            public void endStep(StepContext context) {
                delegate.endStep(context);
            }
        };
    }

    @Override
    public Set<Measurement> measurements(GenerationInfo info) {
        return inner.measurements(info);
    }

    @Override
    public Set<BlockRange> blockRanges(GenerationInfo info) {
        return inner.blockRanges(info);
    }

    @Override
    public Optional<BitSet> fullSteps(GenerationInfo info) {
        int total = info.totalSteps();
        return inner.fullSteps(info).map(inside -> {
            BitSet full = (BitSet) inside.clone();
            full.set(0, Math.min(warmupSteps, total));
            full.set(Math.max(0, total - cooldownSteps), total);
            return full;
        });
    }

    @Override
    public int historyLength() {
        return inner.historyLength();
    }

    @Override
    public boolean separateGuidanceHalves() {
        return inner.separateGuidanceHalves();
    }

    @Override
    public Optional<String> spec() {
        return inner.spec().map(s -> {
            String cooled = cooldownSteps > 0 ? BuiltInPolicyTypes.COOLDOWN.spec(cooldownSteps, s) : s;
            return warmupSteps > 0 ? BuiltInPolicyTypes.WARMUP.spec(warmupSteps, cooled) : cooled;
        });
    }

    @Override
    public String toString() {
        return spec().orElse("warmup:" + warmupSteps + ",cooldown:" + cooldownSteps + "," + inner);
    }
}
