package dev.fora.core.cache;

import dev.fora.core.engine.CacheBudgetException;
import dev.fora.core.engine.MissingFeatureException;
import dev.fora.core.engine.GenerationStats;
import dev.fora.core.engine.Generation;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.DiTModel;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.DdpmSampler;
import dev.fora.core.sampling.DenoisingModel;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.tensor.TensorScope;
import dev.fora.core.testing.SyntheticDiT;
import java.util.Arrays;
import java.util.Set;
import org.junit.jupiter.api.Test;

class GenerationTest {

    /** Branch indices of {@code BlockLayout.DIT}. */
    private static final int ATTN = 0;
    private static final int MLP = 1;

    private final ArrayOps ops = new ArrayOps();
    private final SyntheticDiT model = new SyntheticDiT(ops, 7);
    private final DiTConfig config = model.config();

    private ArrayTensor latent(int n, long seed) {
        long[] shape = {n, config.inChannels(), config.inputSize(), config.inputSize()};
        return ops.fromFloats(shape, new SeededGaussianNoise(seed).next(shape));
    }

    /** An unguided generation of {@code images} latent rows. */
    private static Generation<ArrayTensor> open(DiTModel<ArrayTensor> m, CachePolicy policy, int k,
            int images) {
        return Generation.builder(m, policy).steps(k).images(images).guided(false).open();
    }

    private static SamplingStep at(int step, int k, double timestep) {
        return new SamplingStep(step, k, timestep);
    }

    @Test
    void noCacheForwardEqualsThePlainForwardBitForBit() {
        int k = 5;
        Conditioning labels = ClassLabels.of(3, 10);
        try (ArrayTensor x = latent(2, 1); Generation<ArrayTensor> g = open(model, NoCache.INSTANCE, k, 2)) {
            for (int step = 0; step < k; step++) {
                float t = 999 - 200 * step;
                try (ArrayTensor cached = g.predict(at(step, k, t), x, labels);
                        ArrayTensor plain = model.forward(x, new float[] {t, t}, labels)) {
                    assertThat(ops.toFloats(cached)).as("step %d", step).containsExactly(ops.toFloats(plain));
                }
            }
            assertThat(g.peakCacheBytes()).isZero();
        }
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void noCacheSamplingEqualsUncachedSamplingBitForBitThroughCfgAndDdpm() {
        DdpmSampler sampler = new DdpmSampler(DiffusionSchedule.linear(1000).respace(10));
        Conditioning labels = ClassLabels.of(1, 2);
        long[] shape = {2, 4, 8, 8};
        float[] plain;
        try (ArrayTensor out = sampler.sample(ops, new ClassifierFreeGuidance<>(ops, DenoisingModel.uncached(model), 4.0,
                model.unconditional()), shape, labels, new SeededGaussianNoise(5))) {
            plain = ops.toFloats(out);
        }
        try (Generation<ArrayTensor> g = Generation.builder(model, NoCache.INSTANCE).steps(10).images(2).guided(true).open();
                ArrayTensor out = sampler.sample(ops, new ClassifierFreeGuidance<>(ops, g, 4.0, model.unconditional()), shape,
                        labels, new SeededGaussianNoise(5))) {
            assertThat(ops.toFloats(out)).containsExactly(plain);
            assertThat(g.stats().computeFraction()).isEqualTo(1.0);
        }
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void stepsMustRunOnceEachInOrder() {
        ToyDiT toy = new ToyDiT(ops, 2);
        Conditioning labels = ClassLabels.of(0);
        ArrayTensor x = ops.fromFloats(new long[] {1, 1, 1, 1}, new float[] {0});
        Generation<ArrayTensor> g = open(toy, new StaticIntervalPolicy(2), 3, 1);
        assertThatThrownBy(() -> g.predict(at(1, 3, 10), x, labels)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("step 1 requested but step 0 has not run");
        g.predict(at(0, 3, 10), x, labels).close();
        assertThatThrownBy(() -> g.predict(at(0, 3, 10), x, labels)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("step 0 has already run; the next step is 1");
        assertThatThrownBy(() -> g.predict(new SamplingStep(1, 50, 979), x, labels))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("50 steps").hasMessageContaining("3");
        g.predict(at(1, 3, 9), x, labels).close();
        g.predict(at(2, 3, 8), x, labels).close();
        assertThat(g.nextStep()).isEqualTo(3);
        // past the end: a step 3 of 3 cannot even be named, and the last step cannot run again
        assertThatThrownBy(() -> at(3, 3, 7)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("outside 0..2");
        assertThatThrownBy(() -> g.predict(at(2, 3, 8), x, labels)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("step 2 has already run; the next step is 3");
        g.close();
        g.close();
        assertThat(g.isClosed()).isTrue();
        assertThatThrownBy(() -> g.predict(at(2, 3, 8), x, labels)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed");
        assertThat(g.stats().stepsRun()).isEqualTo(3);
        x.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void rejectedBadInputLeavesTheGenerationUsableAtTheSameStep() {
        int k = 3;
        Conditioning labels = ClassLabels.of(3, 10);
        ArrayTensor x = latent(2, 11);
        float[][] expected = new float[k][];
        try (Generation<ArrayTensor> reference = open(model, CachePolicies.parse("fora:2"), k, 2)) {
            for (int step = 0; step < k; step++) {
                try (ArrayTensor out = reference.predict(at(step, k, 900 - 300 * step), x, labels)) {
                    expected[step] = ops.toFloats(out);
                }
            }
        }
        int c = config.inChannels();
        int s = config.inputSize();
        ArrayTensor[] bad = {
            ops.fromFloats(new long[] {2, c + 1, s, s}, new float[2 * (c + 1) * s * s]),   // channels
            ops.fromFloats(new long[] {2, c, s / 2, s}, new float[2 * c * (s / 2) * s]),   // H
            ops.fromFloats(new long[] {2, c, s, s / 2}, new float[2 * c * s * (s / 2)]),   // W
            ops.fromFloats(new long[] {1, c, s, s}, new float[c * s * s]),                 // batch 1 for 2 images
            ops.fromFloats(new long[] {2 * c, s, s}, new float[2 * c * s * s]),            // rank 3
        };
        // a whole other batch, latent and labels consistent with each other: the batch is fixed when the generation opens
        ArrayTensor three = latent(3, 12);
        try (Generation<ArrayTensor> g = open(model, CachePolicies.parse("fora:2"), k, 2)) {
            for (int step = 0; step < k; step++) {
                int now = step;
                SamplingStep at = at(step, k, 900 - 300 * step);
                for (ArrayTensor b : bad) {
                    assertThatThrownBy(() -> g.predict(at, b, labels)).as("step %d, shape %s", step,
                            Arrays.toString(b.shape())).isInstanceOf(IllegalArgumentException.class)
                            .hasMessageContaining("does not fit this generation")
                            .hasMessageContaining("[2, " + c + ", " + s + ", " + s + "]");
                }
                assertThatThrownBy(() -> g.predict(at, three, ClassLabels.of(0, 1, 2)))
                        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("does not fit this generation")
                        .hasMessageContaining("2 images");
                assertThatThrownBy(() -> g.predict(at, x, ClassLabels.of(3, 11)))
                        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("label 11 at position 1");
                assertThatThrownBy(() -> g.predict(at, x, ClassLabels.of(3)))
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining("the conditioning has 1 rows but the batch has 2");
                assertThatThrownBy(() -> g.predict(at(now, k, Double.NaN), x, labels))
                        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("timestep");
                // nothing was consumed or recorded: the same step runs next, with the reference's result
                assertThat(g.nextStep()).isEqualTo(step);
                assertThat(g.stats().stepsRun()).isEqualTo(step);
                try (ArrayTensor out = g.predict(at, x, labels)) {
                    assertThat(ops.toFloats(out)).as("step %d", step).containsExactly(expected[step]);
                }
                assertThat(g.nextStep()).isEqualTo(step + 1);
            }
            assertThat(g.stats().stepsRun()).isEqualTo(k);
        }
        for (ArrayTensor b : bad) {
            b.close();
        }
        three.close();
        x.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void reusingAFeatureThatWasNeverComputedIsAClearError() {
        ToyDiT toy = new ToyDiT(ops, 3);
        CachePolicy lazy = info -> ctx -> ctx.block() == 2 && ctx.branchIndex() == MLP ? Decision.REUSE : Decision.COMPUTE;
        ArrayTensor x = ops.fromFloats(new long[] {1, 1, 1, 1}, new float[] {0});
        try (Generation<ArrayTensor> g = open(toy, lazy, 4, 1)) {
            assertThatThrownBy(() -> g.predict(at(0, 4, 999), x, ClassLabels.of(0)))
                    .isInstanceOf(MissingFeatureException.class)
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("decided REUSE at step 0 (loop index 3, timestep 999.0), block 2, branch mlp, image 0")
                    .hasMessageContaining("no value of this feature has been computed yet");
        }
        CachePolicy noHistory = new CachePolicy() {
            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                return ctx -> ctx.step().step() == 0 ? Decision.COMPUTE : Decision.REUSE;
            }

            @Override
            public int historyLength() {
                return 0;
            }
        };
        try (Generation<ArrayTensor> g = open(toy, noHistory, 4, 1)) {
            g.predict(at(0, 4, 999), x, ClassLabels.of(0)).close();
            assertThatThrownBy(() -> g.predict(at(1, 4, 666), x, ClassLabels.of(0)))
                    .isInstanceOf(MissingFeatureException.class)
                    .hasMessageContaining("block 0, branch attn")
                    .hasMessageContaining("historyLength() is 0");
        }
        x.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void foraReusesBranchOutputsButRecomputesGatesFromTheCurrentStep() {
        ToyDiT toy = new ToyDiT(ops, 2);
        ArrayTensor x = ops.fromFloats(new long[] {1, 1, 1, 1}, new float[] {0.5f});
        Conditioning labels = ClassLabels.of(0);
        try (Generation<ArrayTensor> g = open(toy, new StaticIntervalPolicy(3), 4, 1)) {
            // K = 4, N = 3: loop indices 3 (first, full), 2, 1 (reuse), 0 (full)
            float[] outputs = new float[4];
            float[] timesteps = {40, 30, 20, 10};
            for (int step = 0; step < 4; step++) {
                toy.calls.clear();
                try (ArrayTensor out = g.predict(at(step, 4, timesteps[step]), x, labels)) {
                    outputs[step] = ops.toFloats(out)[0];
                }
                assertThat(toy.calls).as("step %d", step).hasSize(step == 0 || step == 3 ? 4 : 0);
            }
            // out = x + depth * (A + M), A = t, M = 2t at the step A and M were computed
            assertThat(outputs).containsExactly(0.5f + 2 * 120, 0.5f + 2 * 120, 0.5f + 2 * 120, 0.5f + 2 * 30);
            assertThat(g.stats().fullSteps()).isEqualTo(2);
        }
        x.close();
    }

    @Test
    void everyTensorIsReleasedAfterEachStepAndAfterClose() {
        ArrayTensor x = latent(2, 3);
        Generation<ArrayTensor> g = open(model, CachePolicies.parse("fora:2"), 6, 2);
        for (int step = 0; step < 6; step++) {
            try (TensorScope scope = ops.openScope()) {
                ArrayTensor out = g.predict(at(step, 6, 900 - 100 * step), x, ClassLabels.of(0, 1));
                assertThat(out.shape()).containsExactly(2, 8, 8, 8);
                // alive: x, out, and the 2 * depth cached features
                assertThat(ops.liveTensors()).isEqualTo(2 + 2 * config.depth());
            }
            assertThat(ops.liveTensors()).isEqualTo(1 + 2 * config.depth());
        }
        g.close();
        assertThat(ops.liveTensors()).isEqualTo(1);
        x.close();
        assertThat(ops.liveTensors()).isZero();
        assertThat(ops.liveBytes()).isZero();
    }

    @Test
    void peakCacheBytesOfForaIsTwoFeaturesPerBlock() {
        int batch = 3;
        ArrayTensor x = latent(batch, 4);
        try (Generation<ArrayTensor> g = open(model, new StaticIntervalPolicy(3), 10, batch)) {
            for (int step = 0; step < 10; step++) {
                g.predict(at(step, 10, 999 - 100 * step), x, ClassLabels.of(0, 1, 2)).close();
            }
            long expected = 2L * config.depth() * batch * config.tokens() * config.hiddenSize() * 4;
            assertThat(g.stats().peakCacheBytes()).isEqualTo(expected);
            assertThat(g.cacheBytes()).isEqualTo(expected);
        }
        x.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void theCacheBudgetBoundsThePeakEvenWhenImagesComputeAtDifferentSteps() {
        // image k computes every (2 + k)-th step, so most computing steps update some images' rows only
        CachePolicy staggered = new CachePolicy() {
            private int images;

            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                int interval = 2 + images++;
                return ctx -> ctx.step().step() % interval == 0 ? Decision.COMPUTE : Decision.REUSE;
            }

            @Override
            public Set<Measurement> measurements(GenerationInfo info) {
                return Set.of(Measurement.residualChange(0));
            }
        };
        int batch = 2;
        // one value of every feature and one residual reference, whole batch
        long worst = (config.features() + 1L) * batch * config.featureBytesPerRow();
        assertThatThrownBy(() -> Generation.builder(model, staggered).steps(8).images(batch).cacheBudget(worst - 1).open())
                .isInstanceOf(CacheBudgetException.class)
                .satisfies(e -> assertThat(((CacheBudgetException) e).needBytes()).isEqualTo(worst));
        ArrayTensor x = latent(batch, 5);
        try (Generation<ArrayTensor> g = Generation.builder(model, staggered).steps(8).images(batch).cacheBudget(worst).open()) {
            for (int step = 0; step < 8; step++) {
                g.predict(at(step, 8, 999 - 100 * step), x, ClassLabels.of(0, 1)).close();
            }
            assertThat(g.stats().decisionMap()).contains("   2 " + "C".repeat(12) + "|" + "R".repeat(12));
            assertThat(g.stats().peakCacheBytes()).isEqualTo(worst);
        }
        x.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void statsRecordEveryDecisionOfEveryImageAndTheComputeFraction() {
        ToyDiT toy = new ToyDiT(ops, 4);
        // attention every step, MLP only on even steps
        CachePolicy perBranch = info -> ctx -> ctx.branchIndex() == ATTN || ctx.step().step() % 2 == 0
                ? Decision.COMPUTE : Decision.REUSE;
        // two images, so every count below is twice the per-image count
        ArrayTensor x = ops.fromFloats(new long[] {2, 1, 1, 1}, new float[] {0, 1});
        try (Generation<ArrayTensor> g = open(toy, perBranch, 6, 2)) {
            for (int step = 0; step < 6; step++) {
                g.predict(at(step, 6, 60 - 10 * step), x, ClassLabels.of(0, 1)).close();
            }
            GenerationStats stats = g.stats();
            assertThat(stats.images()).isEqualTo(2);
            assertThat(stats.decision(1, 0, 3, ATTN)).isEqualTo(Decision.Kind.COMPUTE);
            assertThat(stats.decision(1, 1, 3, MLP)).isEqualTo(Decision.Kind.REUSE);
            assertThat(stats.decision(2, 0, 0, MLP)).isEqualTo(Decision.Kind.COMPUTE);
            assertThat(stats.count(Decision.Kind.COMPUTE, ATTN)).isEqualTo(2 * 24);
            assertThat(stats.count(Decision.Kind.COMPUTE, MLP)).isEqualTo(2 * 12);
            assertThat(stats.count(Decision.Kind.REUSE)).isEqualTo(2 * 12);
            assertThat(stats.computeFraction()).isEqualTo(36.0 / 48);
            assertThat(stats.computeFraction(0)).isEqualTo(36.0 / 48);
            assertThat(stats.computeFraction(1)).isEqualTo(36.0 / 48);
            assertThat(stats.speedup()).isCloseTo(48.0 / 36, within(1e-12));
            assertThat(stats.fullSteps()).isEqualTo(3);
            // FLOPs per sample for T = 1, D = 1: attention 8 + 4 = 12, MLP 16
            double flopFraction = (24 * 12.0 + 12 * 16.0) / (24 * 12.0 + 24 * 16.0);
            assertThat(stats.flopComputeFraction()).isCloseTo(flopFraction, within(1e-12));
            assertThat(stats.decisionMap()).startsWith("   0 CCCCCCCC|CCCCCCCC\n   1 CRCRCRCR|CRCRCRCR\n");
            assertThatThrownBy(() -> stats.decision(6, 0, 0, MLP)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> stats.decision(1, 2, 0, MLP)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> stats.computeFraction(2)).isInstanceOf(IllegalArgumentException.class);
            assertThat(stats.toString()).contains("6/6 steps", "3 full");
        }
        x.close();
    }

    @Test
    void foraStatsAtFiftyStepsMatchThePaper() {
        ToyDiT toy = new ToyDiT(ops, 2);
        ArrayTensor x = ops.fromFloats(new long[] {1, 1, 1, 1}, new float[] {0});
        try (Generation<ArrayTensor> g = open(toy, new StaticIntervalPolicy(3), 50, 1)) {
            for (int step = 0; step < 50; step++) {
                g.predict(at(step, 50, 999 - 20 * step), x, ClassLabels.of(0)).close();
            }
            assertThat(g.stats().fullSteps()).isEqualTo(18);
            assertThat(g.stats().computeFraction()).isEqualTo(18 / 50.0);
            assertThat(g.stats().speedup()).isCloseTo(2.78, within(0.01));
            assertThat(g.stats().flopSpeedup()).isCloseTo(50 / 18.0, within(1e-9));
        }
        x.close();
    }

    @Test
    void flopFormulaForDitXl() {
        DiTConfig xl = DiTConfig.classConditional(32, 4, 2, 1152, 28, 16, 1000, true);
        assertThat(xl.tokens()).isEqualTo(256);
        double t = 256;
        double d = 1152;
        assertThat(xl.branchFlopsPerSample(ATTN)).isEqualTo(8 * t * d * d + 4 * t * t * d);
        assertThat(xl.branchFlopsPerSample(MLP)).isEqualTo(16 * t * d * d);
        // blocks dominate DiT-XL/2's ~119 GFLOPs (counted as multiply-adds = 2 FLOPs, ~238 GFLOP here)
        double blocks = 28 * (xl.branchFlopsPerSample(ATTN) + xl.branchFlopsPerSample(MLP));
        assertThat(blocks / 2 / 1e9).isBetween(110.0, 125.0);
    }
}
