package dev.fora.core.cache;

import dev.fora.core.engine.GenerationStats;
import dev.fora.core.engine.Generation;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.fora.core.model.BlockLayout;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.DdimSampler;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.NoiseSource;
import dev.fora.core.sampling.PerImageNoise;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.testing.HarnessReport;
import dev.fora.core.testing.PolicyHarness;
import dev.fora.core.testing.SyntheticDiT;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Every built-in policy in the harness: its decisions, compute fraction, error against uncached, per image, no leaks. */
class BuiltInPoliciesTest {

    private static final PolicyHarness HARNESS = PolicyHarness.withDefaults();

    /** Fewer steps, for the tests that run every built-in. */
    private static final PolicyHarness SHORT = PolicyHarness.builder().steps(30).build();
    private static final int STEPS = 50;
    private static final int IMAGES = 2;
    private static final int DEPTH = SyntheticDiT.SMALL.depth();
    private static final int ATTN = 0;
    private static final int MLP = 1;

    /** One policy and setting of every built-in, as the CLI names them. */
    static final String[] ALL = {"fora:3", "taylorseer:4", "taylorseer:4,2", "hicache:4", "hicache:4,1,0.6", "fbcache:0.5",
        "teacache:0.1", "teacache:0.2,0,2", "magcache:0.1,3", "deltadit:2,3", "deltadit:3,2,10", "pab:attn=2,mlp=4",
        "mask:" + "10".repeat(15), "warmup:3,cooldown:2,hicache:5", "warmup:4,fbcache:0.3", "cooldown:3,teacache:0.2"};

    @ParameterizedTest
    @ValueSource(strings = {"fora:3", "taylorseer:4", "taylorseer:4,2", "hicache:4", "hicache:4,1,0.6", "fbcache:0.5",
        "teacache:0.1", "teacache:0.2,0,2", "magcache:0.1,3", "deltadit:2,3", "deltadit:3,2,10", "pab:attn=2,mlp=4",
        "warmup:3,cooldown:2,hicache:5", "warmup:4,fbcache:0.3", "cooldown:3,teacache:0.2"})
    void everyBuiltInSavesWorkStaysCloseDecidesPerImageAndLeaksNothing(String spec) {
        HarnessReport r = SHORT.run(spec);
        assertThat(r.computeFraction()).as(spec).isLessThan(0.85).isGreaterThan(0.1);
        assertThat(r.relativeL1Error()).as(spec).isPositive().isLessThan(0.05);
        assertThat(r.leakedTensors()).as(spec).isZero();
        assertThat(r.stats().flopSpeedup()).as(spec).isGreaterThan(1.15);
        assertThat(SHORT.batchInvarianceError(r.policy())).as(spec).isZero();
        for (int image = 0; image < IMAGES; image++) {
            assertThat(r.stats().decision(0, image, 0, ATTN)).as(spec).isEqualTo(Decision.Kind.COMPUTE);
            assertThat(r.stats().decision(0, image, DEPTH - 1, MLP)).as(spec).isEqualTo(Decision.Kind.COMPUTE);
        }
    }

    @Test
    void warmupAndCooldownComposeWithEveryBuiltIn() {
        for (String spec : ALL) {
            if (spec.startsWith("mask") || spec.startsWith("warmup") || spec.startsWith("cooldown")) {
                continue;
            }
            HarnessReport r = SHORT.run("warmup:5,cooldown:4," + spec);
            for (int step : new int[] {0, 1, 2, 3, 4, 26, 27, 28, 29}) {
                for (int block = 0; block < DEPTH; block++) {
                    assertThat(r.stats().decision(step, 1, block, MLP)).as("%s step %d block %d", spec, step, block)
                            .isEqualTo(Decision.Kind.COMPUTE);
                }
            }
            assertThat(r.computeFraction()).as(spec).isLessThan(1.0);
            assertThat(r.leakedTensors()).isZero();
        }
    }

    // ---- First-Block-Cache ----------------------------------------------------------------------

    @Test
    void firstBlockCacheComputesBlockZeroAndSkipsTheRestTogether() {
        HarnessReport r = HARNESS.run("fbcache:0.2");
        GenerationStats stats = r.stats();
        for (int image = 0; image < IMAGES; image++) {
            int skipped = 0;
            for (int step = 0; step < STEPS; step++) {
                assertThat(stats.decision(step, image, 0, ATTN)).isEqualTo(Decision.Kind.COMPUTE);
                assertThat(stats.decision(step, image, 0, MLP)).isEqualTo(Decision.Kind.COMPUTE);
                Decision.Kind rest = stats.decision(step, image, 1, ATTN);
                for (int block = 1; block < DEPTH; block++) {
                    assertThat(stats.decision(step, image, block, ATTN)).isEqualTo(rest);
                    assertThat(stats.decision(step, image, block, MLP)).isEqualTo(rest);
                }
                skipped += rest == Decision.Kind.REUSE ? 1 : 0;
            }
            assertThat(skipped).as("image %d", image).isBetween(5, 45);
        }
        assertThat(stats.residualReuses()).isEqualTo(stats.count(Decision.Kind.REUSE) / ((DEPTH - 1) * 2));
        assertThat(stats.count(Decision.Kind.FORECAST)).isZero();
        // the cache holds one residual per image and the reference of block 0's residual, no branch values
        long perTensor = 2L * IMAGES * SyntheticDiT.SMALL.featureBytesPerRow();
        assertThat(stats.peakCacheBytes()).isEqualTo(2 * perTensor);
        // threshold 0 never skips: identical to the uncached run
        assertThat(HARNESS.run("fbcache:0").maxAbsError()).isZero();
        assertThat(HARNESS.run("fbcache:0.4").computeFraction()).isLessThan(r.computeFraction());
    }

    @Test
    void firstBlockCacheRunsNothingOfBlocksOneOnForTheImagesThatSkip() {
        RecordingDiT model = new RecordingDiT(new SyntheticDiT(new ArrayOps(), 3));
        GenerationStats stats = generate(model, CachePolicies.parse("fbcache:0.8"), 4, 20);
        int perStepCalls = DEPTH * 2;
        int call = 0;
        for (int step = 0; step < 20; step++) {
            int computing = 0;
            for (int image = 0; image < 4; image++) {
                computing += stats.decision(step, image, 1, ATTN) == Decision.Kind.COMPUTE ? 1 : 0;
            }
            // block 0 runs every image (8 rows); blocks 1.. run only the computing images, or not at all
            assertThat(model.branchCalls.get(call).rows()).isEqualTo(8);
            assertThat(model.branchCalls.get(call + 1).rows()).isEqualTo(8);
            call += 2;
            if (computing > 0) {
                for (int k = 2; k < perStepCalls; k++) {
                    RecordingDiT.Call c = model.branchCalls.get(call++);
                    assertThat(c.block()).isGreaterThanOrEqualTo(1);
                    assertThat(c.rows()).as("step %d", step).isEqualTo(2 * computing);
                }
            }
        }
        assertThat(model.branchCalls).hasSize(call);
        double[] fractions = perImage(stats, 4);
        assertThat(Arrays.stream(fractions).distinct().count()).as("images decide differently: %s", Arrays.toString(fractions))
                .isGreaterThan(1);
    }

    // ---- TeaCache ---------------------------------------------------------------------------------

    @Test
    void teaCacheSkipsWholeStepsComputesFirstAndLastAndComputesLessWithAHigherThreshold() {
        HarnessReport low = HARNESS.run("teacache:0.05");
        HarnessReport high = HARNESS.run("teacache:0.2");
        assertThat(low.computeFraction()).isLessThan(1.0);
        assertThat(high.computeFraction()).isLessThan(low.computeFraction());
        assertThat(high.relativeL1Error()).isGreaterThan(low.relativeL1Error());
        for (int image = 0; image < IMAGES; image++) {
            for (int step = 0; step < STEPS; step++) {
                Decision.Kind k = high.stats().decision(step, image, 0, ATTN);
                for (int block = 0; block < DEPTH; block++) {
                    assertThat(high.stats().decision(step, image, block, MLP)).isEqualTo(k);
                }
            }
            assertThat(high.stats().decision(0, image, 0, ATTN)).isEqualTo(Decision.Kind.COMPUTE);
            assertThat(high.stats().decision(STEPS - 1, image, 0, ATTN)).isEqualTo(Decision.Kind.COMPUTE);
        }
        assertThat(HARNESS.run("teacache:0").maxAbsError()).isZero();
        // a rescaling that doubles the change computes more often than the identity at the same threshold
        assertThat(HARNESS.run("teacache:0.2,0,2").computeFraction()).isGreaterThan(high.computeFraction());
        assertThat(high.leakedTensors()).isZero();
    }

    // ---- MagCache ---------------------------------------------------------------------------------

    @Test
    void magCacheSkipsAtMostKStepsInARowAndComputesTheFirstTwoAndTheLast() {
        for (int k : new int[] {1, 2, 4}) {
            HarnessReport r = HARNESS.run("magcache:10," + k);
            for (int image = 0; image < IMAGES; image++) {
                int run = 0;
                for (int step = 0; step < STEPS; step++) {
                    Decision.Kind kind = r.stats().decision(step, image, 0, ATTN);
                    for (int block = 0; block < DEPTH; block++) {
                        assertThat(r.stats().decision(step, image, block, MLP)).isEqualTo(kind);
                    }
                    run = kind == Decision.Kind.REUSE ? run + 1 : 0;
                    assertThat(run).as("K %d step %d", k, step).isLessThanOrEqualTo(k);
                    if (step < 2 || step == STEPS - 1) {
                        assertThat(kind).isEqualTo(Decision.Kind.COMPUTE);
                    }
                }
            }
            // with a huge threshold only K limits the skips: K of every K + 1 steps after the first two
            assertThat(r.stats().residualReuses()).as("K %d", k).isGreaterThanOrEqualTo(IMAGES * (STEPS - 4) * k / (k + 1));
        }
        HarnessReport tight = HARNESS.run("magcache:0.02,4");
        HarnessReport loose = HARNESS.run("magcache:0.2,4");
        assertThat(loose.computeFraction()).isLessThan(tight.computeFraction());
        assertThat(loose.relativeL1Error()).isGreaterThan(tight.relativeL1Error());
        assertThat(HARNESS.run("magcache:0,5").maxAbsError()).isZero();
    }

    // ---- Delta-DiT ----------------------------------------------------------------------------------

    @Test
    void deltaDiTSkipsTheRearBlocksEarlyAndTheFrontBlocksLate() {
        HarnessReport r = HARNESS.run("deltadit:3,2,20");
        GenerationStats stats = r.stats();
        StaticIntervalPolicy full = new StaticIntervalPolicy(3);
        for (int image = 0; image < IMAGES; image++) {
            for (int step = 0; step < STEPS; step++) {
                boolean isFull = full.isFullStep(dev.fora.core.sampling.SamplingStep.of(
                        DiffusionSchedule.linear(1000).respace(STEPS), step));
                for (int block = 0; block < DEPTH; block++) {
                    boolean skipped = !isFull && (step < 20 ? block >= DEPTH - 2 : block < 2);
                    assertThat(stats.decision(step, image, block, ATTN)).as("step %d block %d", step, block)
                            .isEqualTo(skipped ? Decision.Kind.REUSE : Decision.Kind.COMPUTE);
                }
            }
        }
        assertThat(r.computeFraction()).isCloseTo((18 + 32 * (DEPTH - 2.0) / DEPTH) / STEPS, within(1e-12));
        assertThatThrownBy(() -> HARNESS.run("deltadit:2,7")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("caches 7 blocks but the model has 6");
        assertThatThrownBy(() -> HARNESS.run("deltadit:2,2,51")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("boundary step 51");
    }

    // ---- per-branch intervals -------------------------------------------------------------------------

    @Test
    void perBranchIntervalsRefreshEachNamedBranchOnItsOwnInterval() {
        HarnessReport r = HARNESS.run("pab:attn=2,mlp=5");
        GenerationStats stats = r.stats();
        // FORA's rule per branch: 26 of 50 steps for N = 2, 11 for N = 5, in every block and image
        assertThat(stats.count(Decision.Kind.COMPUTE, ATTN)).isEqualTo(26 * DEPTH * IMAGES);
        assertThat(stats.count(Decision.Kind.COMPUTE, MLP)).isEqualTo(11 * DEPTH * IMAGES);
        assertThat(HARNESS.run("pab:mlp=5").stats().count(Decision.Kind.COMPUTE, ATTN)).isEqualTo(STEPS * DEPTH * IMAGES);
        PolicyHarness cross = PolicyHarness.builder().config(SyntheticDiT.CROSS_ATTENTION_SMALL).build();
        HarnessReport c = cross.run("pab:cross=4,attn=2");
        int crossIndex = BlockLayout.CROSS_ATTENTION.indexOf("cross");
        assertThat(c.stats().count(Decision.Kind.COMPUTE, crossIndex)).isEqualTo(14 * 4 * IMAGES);
        assertThat(c.stats().count(Decision.Kind.COMPUTE, BlockLayout.CROSS_ATTENTION.indexOf("mlp")))
                .isEqualTo(STEPS * 4 * IMAGES);
        assertThat(c.leakedTensors()).isZero();
        assertThatThrownBy(() -> HARNESS.run("pab:cross=2")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("pab names branch \"cross\" but the model's blocks have [attn, mlp]");
    }

    // ---- TaylorSeer and HiCache -------------------------------------------------------------------------

    @Test
    void taylorSeerOfOrderKExpandsTheRecursiveDifferences() {
        // f(s) = s^2 computed at 6, 3, 0: d0 = 36, d1 = (36 - 9) / 3 = 9, d2 = (9 - 3) / 3 = 2
        double[] c = TaylorSeerPolicy.coefficients(new int[] {6, 3, 0}, 8, 2);
        double forecast = c[0] * 36 + c[1] * 9 + c[2] * 0;
        assertThat(forecast).isCloseTo(36 + 9 * 2 + 2 / 2.0 * 4, within(1e-12));
        // exact on a linear series at any order, and with unequal gaps
        for (int order = 1; order <= 3; order++) {
            int[] steps = {9, 7, 3, 0};
            double[] k = TaylorSeerPolicy.coefficients(steps, 12, order);
            double v = 0;
            for (int j = 0; j < steps.length; j++) {
                v += k[j] * (2 + 0.5 * steps[j]);
            }
            assertThat(v).as("order %d", order).isCloseTo(2 + 0.5 * 12, within(1e-12));
        }
        // order 3 on a cubic at equal gaps N: the backward differences over N^i
        CacheDecider d = new TaylorSeerPolicy(3, 3).newDecider(null);
        Decision decision = Contexts.ask(d, 10, 12, 0, ATTN, 9, 6, 3, 0);
        assertThat(decision.kind()).isEqualTo(Decision.Kind.FORECAST);
        assertThat(decision.terms()).isEqualTo(4);
        // with fewer values than the order, a lower order
        assertThat(Contexts.ask(d, 10, 12, 0, ATTN, 9, 6).coefficients()).containsExactly(new double[] {1 + 1 / 3.0, -1 / 3.0},
                within(1e-12));
        assertThat(Contexts.ask(d, 10, 12, 0, ATTN, 9).kind()).isEqualTo(Decision.Kind.REUSE);
        assertThat(new TaylorSeerPolicy(3, 3).historyLength()).isEqualTo(4);
    }

    @Test
    void hiCacheUsesDualScaledHermitePolynomials() {
        assertThat(HiCachePolicy.hermite(0, 0.7)).isEqualTo(1);
        assertThat(HiCachePolicy.hermite(1, 0.7)).isCloseTo(1.4, within(1e-12));
        assertThat(HiCachePolicy.hermite(2, 0.7)).isCloseTo(4 * 0.49 - 2, within(1e-12));
        assertThat(HiCachePolicy.hermite(3, 0.7)).isCloseTo(8 * 0.343 - 12 * 0.7, within(1e-12));
        // first order at S = sqrt(1/2): Ht_1(x) = 2 S^2 x = x, TaylorSeer's forecast
        int[] steps = {6, 3};
        assertThat(HiCachePolicy.coefficients(steps, 8, 1, Math.sqrt(0.5)))
                .containsExactly(TaylorSeerPolicy.coefficients(steps, 8, 1), within(1e-12));
        // S = 0.5 halves the extrapolated slope: F(a) + 0.5 * (F(a) - F(b)) / 3 * 2
        assertThat(HiCachePolicy.coefficients(steps, 8, 1, 0.5)).containsExactly(new double[] {1 + 1 / 3.0, -1 / 3.0},
                within(1e-12));
        // second order: d2 / 2 * S^2 * H_2(S x) = d2 / 2 * S^2 * (4 S^2 x^2 - 2)
        double[] c = HiCachePolicy.coefficients(new int[] {6, 3, 0}, 8, 2, 0.5);
        double forecast = c[0] * 36 + c[1] * 9;
        double expected = 36 + 9 * (2 * 0.25 * 2) + 2 / 2.0 * 0.25 * (4 * 0.25 * 4 - 2);
        assertThat(forecast).isCloseTo(expected, within(1e-12));
        assertThatThrownBy(() -> new HiCachePolicy(3, 0, 0.5)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void forecastsBeatReuseAtTheSameComputeFraction() {
        HarnessReport reuse = HARNESS.run("fora:4");
        for (String spec : new String[] {"taylorseer:4", "taylorseer:4,2", "hicache:4", "hicache:4,1"}) {
            HarnessReport r = HARNESS.run(spec);
            assertThat(r.computeFraction()).as(spec).isEqualTo(reuse.computeFraction());
            assertThat(r.relativeL1Error()).as(spec).isLessThan(reuse.relativeL1Error());
            assertThat(r.stats().count(Decision.Kind.FORECAST)).as(spec).isPositive();
        }
    }

    // ---- helpers -------------------------------------------------------------------------------------

    private static double[] perImage(GenerationStats stats, int images) {
        double[] f = new double[images];
        for (int k = 0; k < images; k++) {
            f[k] = stats.computeFraction(k);
        }
        return f;
    }

    /** {@code images} guided DDIM images of {@code model} under {@code policy}, labels 0.., seeds 100..; the stats. */
    private static GenerationStats generate(RecordingDiT model, CachePolicy policy, int images, int steps) {
        ArrayOps ops = model.ops();
        List<NoiseSource> noise = new ArrayList<>();
        int[] labels = new int[images];
        for (int i = 0; i < images; i++) {
            noise.add(new SeededGaussianNoise(100 + i));
            labels[i] = i;
        }
        DdimSampler ddim = new DdimSampler(DiffusionSchedule.linear(1000).respace(steps));
        GenerationStats stats;
        try (Generation<ArrayTensor> g = Generation.builder(model, policy).steps(steps).images(images).guided(true).open()) {
            ddim.sample(ops, new ClassifierFreeGuidance<>(ops, g, 1.5, model.unconditional()), new long[] {images, 4, 8, 8},
                    ClassLabels.of(labels), new PerImageNoise(noise)).close();
            stats = g.stats();
        }
        assertThat(ops.liveTensors()).isZero();
        return stats;
    }
}
