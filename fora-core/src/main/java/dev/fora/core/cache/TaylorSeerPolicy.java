package dev.fora.core.cache;

import java.util.Optional;

/**
 * A first-order TaylorSeer-style policy ({@code taylorseer:N}): full steps follow FORA's
 * static interval {@code N}; on cached steps each feature is extrapolated linearly from its
 * last two computed values instead of reused as is:
 * <pre>
 *   F(s) = F(a) + (F(a) - F(b)) / (a - b) * (s - a)      a, b = the last two computed steps
 * </pre>
 * i.e. {@code forecast(1 + k, -k)} with {@code k = (s - a) / (a - b)}. Until two values
 * exist the feature is reused.
 */
public final class TaylorSeerPolicy implements CachePolicy, CacheDecider {

    private final StaticIntervalPolicy schedule;

    /** @param interval FORA interval {@code N >= 1} for the full steps */
    public TaylorSeerPolicy(int interval) {
        this.schedule = new StaticIntervalPolicy(interval);
    }

    @Override
    public CacheDecider newDecider(GenerationInfo info) {
        return this;
    }

    @Override
    public int historyLength() {
        return 2;
    }

    @Override
    public Decision decide(StepContext context) {
        if (schedule.isFullStep(context.step())) {
            return Decision.COMPUTE;
        }
        int[] computed = context.computedSteps();
        if (computed.length < 2) {
            return Decision.REUSE;
        }
        double k = (double) (context.step().step() - computed[0]) / (computed[0] - computed[1]);
        return Decision.forecast(1 + k, -k);
    }

    @Override
    public Optional<String> spec() {
        return Optional.of("taylorseer:" + schedule.interval());
    }

    @Override
    public String toString() {
        return spec().orElseThrow();
    }
}
