package dev.fora.core.cache;

import java.util.BitSet;
import java.util.Optional;

/**
 * The frame TaylorSeer and HiCache share: full steps on FORA's static interval {@code N}, and
 * on cached steps a forecast from the finite differences of the {@code O + 1} most recent
 * computed values (reuse while only one is cached). A subclass gives the forecast's
 * coefficients. One instance serves every image: it keeps no state of its own.
 */
abstract sealed class IntervalForecastPolicy implements CachePolicy, CacheDecider
        permits TaylorSeerPolicy, HiCachePolicy {

    private final StaticIntervalPolicy schedule;
    private final int order;

    IntervalForecastPolicy(String name, int interval, int order) {
        if (order < 1) {
            throw new IllegalArgumentException(name + " order must be >= 1, got " + order);
        }
        if (order == Integer.MAX_VALUE) {
            // the history length order + 1 would overflow
            throw new IllegalArgumentException(name + " order must be at most " + (Integer.MAX_VALUE - 1)
                    + " (the cache keeps order + 1 computed values), got " + order);
        }
        this.schedule = new StaticIntervalPolicy(interval);
        this.order = order;
    }

    /** The FORA interval of the full steps. */
    public final int interval() {
        return schedule.interval();
    }

    /** The order of the forecast. */
    public final int order() {
        return order;
    }

    @Override
    public final CacheDecider newDecider(GenerationInfo info) {
        return this;
    }

    @Override
    public final Optional<BitSet> fullSteps(GenerationInfo info) {
        return schedule.fullSteps(info);
    }

    @Override
    public final int historyLength() {
        return order + 1;
    }

    @Override
    public final Decision decide(StepContext context) {
        if (schedule.isFullStep(context.step())) {
            return Decision.COMPUTE;
        }
        int[] computed = context.computedSteps();
        if (computed.length < 2) {
            return Decision.REUSE;
        }
        return Decision.forecast(coefficients(computed, context.step().step()));
    }

    /**
     * The forecast at step {@code s} as coefficients over the values computed at
     * {@code computed} (at least two, most recent first).
     */
    abstract double[] coefficients(int[] computed, int s);

    @Override
    public String toString() {
        return spec().orElseThrow();
    }
}
