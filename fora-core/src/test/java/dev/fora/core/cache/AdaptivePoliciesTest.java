package dev.fora.core.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.testing.HarnessReport;
import dev.fora.core.testing.PolicyHarness;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalDouble;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Policies outside FORA's static rule, written against the public SPI only. */
class AdaptivePoliciesTest {

    private static final PolicyHarness HARNESS = PolicyHarness.withDefaults();

    /**
     * The rule both policies below share: once per step, add the step's measured change of
     * {@code signal} (infinite if not measured) to a running total; reuse while the total stays
     * below {@code threshold} and {@link #mayReuse} allows it, and restart the total from 0
     * whenever the step computes.
     */
    abstract static class AccumulatedChangePolicy implements CachePolicy {
        private final double threshold;
        private final Signal signal;

        AccumulatedChangePolicy(double threshold, Signal signal) {
            this.threshold = threshold;
            this.signal = signal;
        }

        /** Whether this decision is always COMPUTE, before the step's rule is consulted. */
        abstract boolean alwaysComputes(StepContext ctx);

        /** A further condition for reusing in the step of {@code ctx}. */
        abstract boolean mayReuse(StepContext ctx);

        @Override
        public Set<Signal> signals() {
            return Set.of(signal);
        }

        @Override
        public CacheDecider newSession(GenerationInfo info) {
            return new CacheDecider() {
                private double accumulated;
                private int decidedStep = -1;
                private boolean reuse;

                @Override
                public Decision decide(StepContext ctx) {
                    if (alwaysComputes(ctx)) {
                        return Decision.COMPUTE;
                    }
                    if (ctx.step() != decidedStep) {
                        decidedStep = ctx.step();
                        OptionalDouble change = ctx.signal(signal);
                        accumulated += change.orElse(Double.POSITIVE_INFINITY);
                        reuse = accumulated < threshold && mayReuse(ctx);
                        if (!reuse) {
                            accumulated = 0;
                        }
                    }
                    return reuse ? Decision.REUSE : Decision.COMPUTE;
                }
            };
        }
    }

    /**
     * First-Block-Cache: always run block 0; skip blocks 1.. while block 0's residual has
     * changed less than {@code threshold} in total since the last computed step.
     */
    static final class FirstBlockCache extends AccumulatedChangePolicy {
        FirstBlockCache(double threshold) {
            super(threshold, Signal.FIRST_BLOCK_RESIDUAL_CHANGE);
        }

        @Override
        boolean alwaysComputes(StepContext ctx) {
            return ctx.block() == 0;
        }

        @Override
        boolean mayReuse(StepContext ctx) {
            return ctx.hasCachedValue();
        }
    }

    /** TeaCache: accumulate block 0's modulated-input change; reuse the whole step below the threshold. */
    static final class TeaCache extends AccumulatedChangePolicy {
        TeaCache(double threshold) {
            super(threshold, Signal.MODULATED_INPUT_CHANGE);
        }

        @Override
        boolean alwaysComputes(StepContext ctx) {
            return false;
        }

        @Override
        boolean mayReuse(StepContext ctx) {
            return ctx.step() < ctx.totalSteps() - 1;
        }
    }

    @Test
    void firstBlockCacheUsesTheResidualSignalMeasuredEarlierInTheStep() {
        HarnessReport report = HARNESS.run(new FirstBlockCache(0.5));
        GenerationStats stats = report.stats();
        int reusedSteps = 0;
        for (int step = 0; step < 50; step++) {
            assertThat(stats.decision(step, 0, Branch.ATTENTION)).isEqualTo(Decision.Kind.COMPUTE);
            assertThat(stats.decision(step, 0, Branch.MLP)).isEqualTo(Decision.Kind.COMPUTE);
            Decision.Kind rest = stats.decision(step, 1, Branch.ATTENTION);
            for (int block = 1; block < 6; block++) {
                assertThat(stats.decision(step, block, Branch.MLP)).isEqualTo(rest);
            }
            reusedSteps += rest == Decision.Kind.REUSE ? 1 : 0;
        }
        assertThat(stats.decision(0, 1, Branch.ATTENTION)).isEqualTo(Decision.Kind.COMPUTE);
        assertThat(reusedSteps).isBetween(5, 45);
        assertThat(report.relativeL1Error()).isPositive().isLessThan(0.1);
        assertThat(report.leakedTensors()).isZero();
        // threshold 0 never reuses: identical to the uncached run
        assertThat(HARNESS.run(new FirstBlockCache(0)).maxAbsError()).isZero();
    }

    @Test
    void teaCacheSkipsWholeStepsAndComputesLessWithAHigherThreshold() {
        HarnessReport low = HARNESS.run(new TeaCache(0.05));
        HarnessReport high = HARNESS.run(new TeaCache(0.3));
        assertThat(low.computeFraction()).isLessThan(1.0);
        assertThat(high.computeFraction()).isLessThan(low.computeFraction());
        assertThat(high.relativeL1Error()).isGreaterThan(low.relativeL1Error());
        assertThat(high.stats().decision(0, 0, Branch.ATTENTION)).isEqualTo(Decision.Kind.COMPUTE);
        assertThat(high.stats().decision(49, 0, Branch.ATTENTION)).isEqualTo(Decision.Kind.COMPUTE);
        assertThat(high.leakedTensors()).isZero();
    }

    @Test
    void signalsAreMeasuredOnlyWhenDeclaredAndOnlyWhereAvailable() {
        ArrayOps ops = new ArrayOps();
        ToyDiT toy = new ToyDiT(ops, 3);
        List<String> seen = new ArrayList<>();
        CachePolicy tooEarly = new CachePolicy() {
            @Override
            public Set<Signal> signals() {
                return Set.of(Signal.FIRST_BLOCK_RESIDUAL_CHANGE, Signal.MODULATED_INPUT_CHANGE);
            }

            @Override
            public CacheDecider newSession(GenerationInfo info) {
                return ctx -> {
                    seen.add(ctx.step() + ":" + ctx.block() + ":" + ctx.signal(Signal.MODULATED_INPUT_CHANGE));
                    if (ctx.block() >= 1) {
                        seen.add("residual " + ctx.signal(Signal.FIRST_BLOCK_RESIDUAL_CHANGE));
                    }
                    if (ctx.block() == 0 && ctx.step() == 1) {
                        ctx.signal(Signal.FIRST_BLOCK_RESIDUAL_CHANGE);
                    }
                    return Decision.COMPUTE;
                };
            }
        };
        ArrayTensor x = ops.fromFloats(new long[] {1, 1, 1, 1}, new float[] {1});
        try (GenerationSession<ArrayTensor> session = new CachedDiT<>(toy).newSession(tooEarly, 3)) {
            session.forward(0, x, 10, new int[] {0}).close();
            assertThat(seen).contains("0:0:OptionalDouble.empty", "residual OptionalDouble.empty");
            assertThatThrownBy(() -> session.forward(1, x, 20, new int[] {0}))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("FIRST_BLOCK_RESIDUAL_CHANGE is measured after block 0")
                    .hasMessageContaining("deciding block 0");
            // toy: modulated input = x + t -> 11 then 21: change 10/11
            assertThat(seen).contains("1:0:OptionalDouble[" + (10.0 / 11) + "]");
        }
        CachePolicy undeclared = info -> ctx -> {
            ctx.signal(Signal.MODULATED_INPUT_CHANGE);
            return Decision.COMPUTE;
        };
        try (GenerationSession<ArrayTensor> session = new CachedDiT<>(toy).newSession(undeclared, 3)) {
            assertThatThrownBy(() -> session.forward(0, x, 10, new int[] {0}))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("not declared in the policy's signals()");
        }
        x.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void perBlockAndPerBranchRulesNeedNoSignals() {
        // Delta-DiT-like: rear blocks reuse during the first half, front blocks during the second
        // half; attention refreshes every 2 steps, MLP every 4 (both on FORA's loop index).
        StaticIntervalPolicy attention = new StaticIntervalPolicy(2);
        StaticIntervalPolicy mlp = new StaticIntervalPolicy(4);
        CachePolicy rule = info -> ctx -> {
            boolean early = ctx.step() < ctx.totalSteps() / 2;
            boolean rear = ctx.block() >= ctx.depth() / 2;
            if (early != rear) {
                return Decision.COMPUTE;
            }
            StaticIntervalPolicy interval = ctx.branch() == Branch.ATTENTION ? attention : mlp;
            return interval.isFullStep(ctx.step(), ctx.totalSteps()) ? Decision.COMPUTE : Decision.REUSE;
        };
        HarnessReport report = HARNESS.run(rule);
        GenerationStats stats = report.stats();
        // step 2 (loop index 47) is early: front block 0 computes, rear block 5 reuses both branches
        assertThat(stats.decision(2, 0, Branch.MLP)).isEqualTo(Decision.Kind.COMPUTE);
        assertThat(stats.decision(2, 5, Branch.ATTENTION)).isEqualTo(Decision.Kind.REUSE);
        // step 3 (loop index 46): attention refreshes (46 % 2 == 0), MLP does not
        assertThat(stats.decision(3, 5, Branch.ATTENTION)).isEqualTo(Decision.Kind.COMPUTE);
        assertThat(stats.decision(3, 5, Branch.MLP)).isEqualTo(Decision.Kind.REUSE);
        // step 40 is late: rear blocks compute, front blocks follow the intervals
        assertThat(stats.decision(40, 4, Branch.MLP)).isEqualTo(Decision.Kind.COMPUTE);
        assertThat(stats.decision(42, 1, Branch.ATTENTION)).isEqualTo(Decision.Kind.REUSE); // loop index 7
        assertThat(stats.count(Decision.Kind.COMPUTE, Branch.ATTENTION))
                .isGreaterThan(stats.count(Decision.Kind.COMPUTE, Branch.MLP));
        assertThat(report.relativeL1Error()).isPositive().isLessThan(0.05);
    }

    @Test
    void taylorSeerForecastsLinearFeaturesExactly() {
        ArrayOps ops = new ArrayOps();
        ToyDiT toy = new ToyDiT(ops, 2);
        ArrayTensor x = ops.fromFloats(new long[] {1, 1, 1, 1}, new float[] {0});
        TaylorSeerPolicy policy = new TaylorSeerPolicy(3);
        int k = 10; // full steps 0, 3, 6, 9
        try (GenerationSession<ArrayTensor> session = new CachedDiT<>(toy).newSession(policy, k)) {
            for (int step = 0; step < k; step++) {
                float t = 100 - 10 * step;
                float out;
                try (ArrayTensor o = session.forward(step, x, t, new int[] {0})) {
                    out = ops.toFloats(o)[0];
                }
                // out = depth * (A + M) = 2 * 3t when exact; steps 1, 2 only have one value and reuse step 0's
                float expected = step == 1 || step == 2 ? 2 * 3 * 100 : 2 * 3 * t;
                assertThat(out).as("step %d", step).isCloseTo(expected, within(1e-3f));
            }
            GenerationStats stats = session.stats();
            assertThat(stats.count(Decision.Kind.FORECAST)).isEqualTo(4 * 2 * 2);
            assertThat(stats.count(Decision.Kind.REUSE)).isEqualTo(2 * 2 * 2);
            assertThat(stats.decision(4, 1, Branch.MLP)).isEqualTo(Decision.Kind.FORECAST);
            assertThat(session.cache().computedSteps(0, Branch.ATTENTION)).containsExactly(9, 6);
            assertThat(stats.peakCacheBytes()).isEqualTo(2L * 2 * 2 * 4);
        }
        x.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void taylorSeerCoefficientsExtrapolateFromTheLastTwoComputedSteps() {
        CacheDecider d = new TaylorSeerPolicy(3).newSession(null);
        // step 5 of 10 (loop index 4) is not a full step; last computed at 3 and 0
        Decision decision = Contexts.ask(d, 5, 10, 0, Branch.ATTENTION, 3, 0);
        assertThat(decision.kind()).isEqualTo(Decision.Kind.FORECAST);
        assertThat(decision.coefficients()).containsExactly(new double[] {1 + 2.0 / 3, -2.0 / 3}, within(1e-12));
        assertThat(Contexts.ask(d, 5, 10, 0, Branch.ATTENTION, 3).kind()).isEqualTo(Decision.Kind.REUSE);
        assertThat(Contexts.ask(d, 6, 10, 0, Branch.ATTENTION, 3, 0).kind()).isEqualTo(Decision.Kind.COMPUTE);
    }

    @Test
    void forecastingBeatsReuseOnSmoothlyDriftingFeatures() {
        HarnessReport reuse = HARNESS.run("fora:3");
        HarnessReport forecast = HARNESS.run("taylorseer:3");
        assertThat(forecast.computeFraction()).isEqualTo(reuse.computeFraction());
        assertThat(forecast.relativeL1Error()).isLessThan(reuse.relativeL1Error());
    }

    @Test
    void forecastNeedingMoreValuesThanTheHistoryIsAClearError() {
        ArrayOps ops = new ArrayOps();
        ToyDiT toy = new ToyDiT(ops, 1);
        CachePolicy greedy = info -> ctx -> ctx.step() == 0 ? Decision.COMPUTE : Decision.forecast(2, -1);
        ArrayTensor x = ops.fromFloats(new long[] {1, 1, 1, 1}, new float[] {0});
        try (GenerationSession<ArrayTensor> session = new CachedDiT<>(toy).newSession(greedy, 3)) {
            session.forward(0, x, 10, new int[] {0}).close();
            assertThatThrownBy(() -> session.forward(1, x, 5, new int[] {0}))
                    .isInstanceOf(MissingFeatureException.class)
                    .hasMessageContaining("FORECAST[2.0, -1.0] at step 1")
                    .hasMessageContaining("needs 2 computed values but the policy's historyLength() is 1");
        }
        x.close();
        assertThatThrownBy(() -> Decision.forecast()).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Decision.forecast(Double.NaN)).isInstanceOf(IllegalArgumentException.class);
    }
}
