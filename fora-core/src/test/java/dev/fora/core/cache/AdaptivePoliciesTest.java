package dev.fora.core.cache;

import dev.fora.core.engine.MissingFeatureException;
import dev.fora.core.engine.GenerationStats;
import dev.fora.core.engine.Generation;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.fora.core.model.ClassLabels;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.testing.HarnessReport;
import dev.fora.core.testing.PolicyHarness;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Policies outside FORA's static rule, written against the public SPI only (the built-in
 * First-Block-Cache, TeaCache, MagCache, ... are tested in {@link BuiltInPoliciesTest}).
 */
class AdaptivePoliciesTest {

    private static final PolicyHarness HARNESS = PolicyHarness.withDefaults();

    /** Images of the default harness. */
    private static final int IMAGES = 2;

    /** Branch indices of {@code BlockLayout.DIT}. */
    private static final int ATTN = 0;
    private static final int MLP = 1;

    @Test
    void measurementsAreTakenOnlyWhenDeclaredAndReadOnlyWhereAvailable() {
        ArrayOps ops = new ArrayOps();
        ToyDiT toy = new ToyDiT(ops, 3);
        List<String> seen = new ArrayList<>();
        Measurement input = Measurement.modulatedInputChange(0);
        Measurement residual = Measurement.residualChange(0);
        CachePolicy tooEarly = new CachePolicy() {
            @Override
            public Set<Measurement> measurements(GenerationInfo info) {
                return Set.of(residual, input);
            }

            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                return ctx -> {
                    seen.add(ctx.step().step() + ":" + ctx.block() + ":" + ctx.measurement(input));
                    if (ctx.block() >= 1) {
                        seen.add("residual " + ctx.measurement(residual));
                    }
                    if (ctx.block() == 0 && ctx.step().step() == 1) {
                        ctx.measurement(residual);
                    }
                    return Decision.COMPUTE;
                };
            }
        };
        ArrayTensor x = ops.fromFloats(new long[] {1, 1, 1, 1}, new float[] {1});
        try (Generation<ArrayTensor> g = Generation.builder(toy, tooEarly).steps(3).images(1).guided(false).open()) {
            g.predict(new SamplingStep(0, 3, 10), x, ClassLabels.of(0)).close();
            assertThat(seen).contains("0:0:OptionalDouble.empty", "residual OptionalDouble.empty");
            assertThatThrownBy(() -> g.predict(new SamplingStep(1, 3, 20), x, ClassLabels.of(0)))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining(residual + " is measured before block 1")
                    .hasMessageContaining("deciding block 0");
            // toy: modulated input = x + t -> 11 then 21: change 10/11
            assertThat(seen).contains("1:0:OptionalDouble[" + (10.0 / 11) + "]");
        }
        CachePolicy undeclared = info -> ctx -> {
            ctx.measurement(input);
            return Decision.COMPUTE;
        };
        try (Generation<ArrayTensor> g = Generation.builder(toy, undeclared).steps(3).images(1).guided(false).open()) {
            assertThatThrownBy(() -> g.predict(new SamplingStep(0, 3, 10), x, ClassLabels.of(0)))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("not declared in the policy's measurements(info)");
        }
        x.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void perBlockAndPerBranchRulesNeedNoMeasurements() {
        // Delta-DiT-like: rear blocks reuse during the first half, front blocks during the second
        // half; attention refreshes every 2 steps, MLP every 4 (both on FORA's loop index).
        StaticIntervalPolicy attention = new StaticIntervalPolicy(2);
        StaticIntervalPolicy mlp = new StaticIntervalPolicy(4);
        CachePolicy rule = info -> ctx -> {
            boolean early = ctx.step().step() < ctx.info().totalSteps() / 2;
            boolean rear = ctx.block() >= ctx.info().config().depth() / 2;
            if (early != rear) {
                return Decision.COMPUTE;
            }
            StaticIntervalPolicy interval = ctx.branch().name().equals("attn") ? attention : mlp;
            return interval.isFullStep(ctx.step()) ? Decision.COMPUTE : Decision.REUSE;
        };
        HarnessReport report = HARNESS.run(rule);
        GenerationStats stats = report.stats();
        for (int image = 0; image < IMAGES; image++) {
            // step 2 (loop index 47) is early: front block 0 computes, rear block 5 reuses both branches
            assertThat(stats.decision(2, image, 0, MLP)).isEqualTo(Decision.Kind.COMPUTE);
            assertThat(stats.decision(2, image, 5, ATTN)).isEqualTo(Decision.Kind.REUSE);
            // step 3 (loop index 46): attention refreshes (46 % 2 == 0), MLP does not
            assertThat(stats.decision(3, image, 5, ATTN)).isEqualTo(Decision.Kind.COMPUTE);
            assertThat(stats.decision(3, image, 5, MLP)).isEqualTo(Decision.Kind.REUSE);
            // step 40 is late: rear blocks compute, front blocks follow the intervals
            assertThat(stats.decision(40, image, 4, MLP)).isEqualTo(Decision.Kind.COMPUTE);
            assertThat(stats.decision(42, image, 1, ATTN)).isEqualTo(Decision.Kind.REUSE); // loop index 7
        }
        assertThat(stats.count(Decision.Kind.COMPUTE, ATTN)).isGreaterThan(stats.count(Decision.Kind.COMPUTE, MLP));
        assertThat(report.relativeL1Error()).isPositive().isLessThan(0.05);
    }

    @Test
    void taylorSeerForecastsLinearFeaturesExactly() {
        ArrayOps ops = new ArrayOps();
        ToyDiT toy = new ToyDiT(ops, 2);
        ArrayTensor x = ops.fromFloats(new long[] {1, 1, 1, 1}, new float[] {0});
        TaylorSeerPolicy policy = new TaylorSeerPolicy(3);
        int k = 10; // full steps 0, 3, 6, 9
        try (Generation<ArrayTensor> g = Generation.builder(toy, policy).steps(k).images(1).guided(false).open()) {
            for (int step = 0; step < k; step++) {
                float t = 100 - 10 * step;
                float out;
                try (ArrayTensor o = g.predict(new SamplingStep(step, k, t), x, ClassLabels.of(0))) {
                    out = ops.toFloats(o)[0];
                }
                // out = depth * (A + M) = 2 * 3t when exact; steps 1, 2 only have one value and reuse step 0's
                float expected = step == 1 || step == 2 ? 2 * 3 * 100 : 2 * 3 * t;
                assertThat(out).as("step %d", step).isCloseTo(expected, within(1e-3f));
            }
            GenerationStats stats = g.stats();
            assertThat(stats.count(Decision.Kind.FORECAST)).isEqualTo(4 * 2 * 2);
            assertThat(stats.count(Decision.Kind.REUSE)).isEqualTo(2 * 2 * 2);
            assertThat(stats.decision(4, 0, 1, MLP)).isEqualTo(Decision.Kind.FORECAST);
            // feature 0 = block 0's attn, unit 0 = the only image
            assertThat(g.computedSteps(toy.config().feature(0, ATTN), 0)).containsExactly(9, 6);
            assertThat(stats.peakCacheBytes()).isEqualTo(2L * 2 * 2 * 4);
        }
        x.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void taylorSeerCoefficientsExtrapolateFromTheLastTwoComputedSteps() {
        CacheDecider d = new TaylorSeerPolicy(3).newDecider(null);
        // step 5 of 10 (loop index 4) is not a full step; last computed at 3 and 0
        Decision decision = Contexts.ask(d, 5, 10, 0, ATTN, 3, 0);
        assertThat(decision.kind()).isEqualTo(Decision.Kind.FORECAST);
        assertThat(decision.coefficients()).containsExactly(new double[] {1 + 2.0 / 3, -2.0 / 3}, within(1e-12));
        assertThat(Contexts.ask(d, 5, 10, 0, ATTN, 3).kind()).isEqualTo(Decision.Kind.REUSE);
        assertThat(Contexts.ask(d, 6, 10, 0, ATTN, 3, 0).kind()).isEqualTo(Decision.Kind.COMPUTE);
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
        CachePolicy greedy = info -> ctx -> ctx.step().step() == 0 ? Decision.COMPUTE : Decision.forecast(2, -1);
        ArrayTensor x = ops.fromFloats(new long[] {1, 1, 1, 1}, new float[] {0});
        try (Generation<ArrayTensor> g = Generation.builder(toy, greedy).steps(3).images(1).guided(false).open()) {
            g.predict(new SamplingStep(0, 3, 10), x, ClassLabels.of(0)).close();
            assertThatThrownBy(() -> g.predict(new SamplingStep(1, 3, 5), x, ClassLabels.of(0)))
                    .isInstanceOf(MissingFeatureException.class)
                    .hasMessageContaining("FORECAST[2.0, -1.0] at step 1")
                    .hasMessageContaining("needs 2 computed values but the policy's historyLength() is 1");
        }
        x.close();
        assertThatThrownBy(() -> Decision.forecast()).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Decision.forecast(Double.NaN)).isInstanceOf(IllegalArgumentException.class);
    }
}
