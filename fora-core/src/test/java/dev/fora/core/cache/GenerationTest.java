package dev.fora.core.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.fora.core.model.DiTConfig;
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
import org.junit.jupiter.api.Test;

class GenerationSessionTest {

    private final ArrayOps ops = new ArrayOps();
    private final SyntheticDiT model = new SyntheticDiT(ops, 7);
    private final DiTConfig config = model.config();

    private ArrayTensor latent(int n, long seed) {
        long[] shape = {n, config.inChannels(), config.inputSize(), config.inputSize()};
        return ops.fromFloats(shape, new SeededGaussianNoise(seed).next(shape));
    }

    @Test
    void noCacheForwardEqualsThePlainForwardBitForBit() {
        int k = 5;
        int[] labels = {3, 10};
        try (ArrayTensor x = latent(2, 1);
                GenerationSession<ArrayTensor> session = new CachedDiT<>(model).newSession(NoCache.INSTANCE, k)) {
            for (int step = 0; step < k; step++) {
                float t = 999 - 200 * step;
                try (ArrayTensor cached = session.forward(step, x, t, labels);
                        ArrayTensor plain = model.forward(x, new float[] {t, t}, labels)) {
                    assertThat(ops.toFloats(cached)).as("step %d", step).containsExactly(ops.toFloats(plain));
                }
            }
            assertThat(session.cache().peakBytes()).isZero();
        }
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void noCacheSamplingEqualsUncachedSamplingBitForBitThroughCfgAndDdpm() {
        DdpmSampler sampler = new DdpmSampler(DiffusionSchedule.linear(1000).respace(10));
        int[] labels = {1, 2};
        long[] shape = {2, 4, 8, 8};
        float[] plain;
        try (ArrayTensor out = sampler.sample(ops, new ClassifierFreeGuidance<>(ops, DenoisingModel.uncached(model), 4.0, 10),
                shape, labels, new SeededGaussianNoise(5))) {
            plain = ops.toFloats(out);
        }
        try (GenerationSession<ArrayTensor> session = new CachedDiT<>(model).newSession(NoCache.INSTANCE, 10);
                ArrayTensor out = sampler.sample(ops, new ClassifierFreeGuidance<>(ops, session, 4.0, 10), shape, labels,
                        new SeededGaussianNoise(5))) {
            assertThat(ops.toFloats(out)).containsExactly(plain);
            assertThat(session.stats().computeFraction()).isEqualTo(1.0);
        }
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void stepsMustRunOnceEachInOrder() {
        ToyDiT toy = new ToyDiT(ops, 2);
        int[] labels = {0};
        ArrayTensor x = ops.fromFloats(new long[] {1, 1, 1, 1}, new float[] {0});
        GenerationSession<ArrayTensor> session = new CachedDiT<>(toy).newSession(new StaticIntervalPolicy(2), 3);
        assertThatThrownBy(() -> session.forward(1, x, 10, labels)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("step 1 requested but step 0 has not run");
        session.forward(0, x, 10, labels).close();
        assertThatThrownBy(() -> session.forward(0, x, 10, labels)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("step 0 has already run; the next step is 1");
        assertThatThrownBy(() -> session.predict(new SamplingStep(1, 50, 979), x, labels))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("50 steps").hasMessageContaining("3");
        session.forward(1, x, 9, labels).close();
        session.forward(2, x, 8, labels).close();
        assertThat(session.nextStep()).isEqualTo(3);
        assertThatThrownBy(() -> session.forward(3, x, 7, labels)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("all 3 steps of this session have run");
        session.close();
        session.close();
        assertThatThrownBy(() -> session.forward(3, x, 7, labels)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed");
        assertThat(session.stats().stepsRun()).isEqualTo(3);
        x.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void rejectedBadInputLeavesTheSessionUsableAtTheSameStep() {
        int k = 3;
        int[] labels = {3, 10};
        ArrayTensor x = latent(2, 11);
        float[][] expected = new float[k][];
        try (GenerationSession<ArrayTensor> reference = new CachedDiT<>(model).newSession(CachePolicies.parse("fora:2"), k)) {
            for (int step = 0; step < k; step++) {
                try (ArrayTensor out = reference.forward(step, x, 900 - 300 * step, labels)) {
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
            ops.fromFloats(new long[] {1, c, s, s}, new float[c * s * s]),                 // batch 1 for 2 labels
            ops.fromFloats(new long[] {2 * c, s, s}, new float[2 * c * s * s]),            // rank 3
        };
        try (GenerationSession<ArrayTensor> session = new CachedDiT<>(model).newSession(CachePolicies.parse("fora:2"), k)) {
            for (int step = 0; step < k; step++) {
                int at = step;
                double t = 900 - 300 * step;
                for (ArrayTensor b : bad) {
                    assertThatThrownBy(() -> session.forward(at, b, t, labels)).as("step %d, shape %s", step,
                            java.util.Arrays.toString(b.shape())).isInstanceOf(IllegalArgumentException.class)
                            .hasMessageContaining("does not match the model")
                            .hasMessageContaining("[2, " + c + ", " + s + ", " + s + "]");
                }
                assertThatThrownBy(() -> session.forward(at, x, t, new int[] {3, 11}))
                        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("label 11 at position 1");
                assertThatThrownBy(() -> session.forward(at, x, t, new int[] {3}))
                        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("1 label(s)");
                assertThatThrownBy(() -> session.forward(at, x, Double.NaN, labels))
                        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("timestep");
                // nothing was consumed or recorded: the same step runs next, with the reference's result
                assertThat(session.nextStep()).isEqualTo(step);
                assertThat(session.stats().stepsRun()).isEqualTo(step);
                try (ArrayTensor out = session.forward(step, x, t, labels)) {
                    assertThat(ops.toFloats(out)).as("step %d", step).containsExactly(expected[step]);
                }
                assertThat(session.nextStep()).isEqualTo(step + 1);
            }
            assertThat(session.stats().stepsRun()).isEqualTo(k);
        }
        for (ArrayTensor b : bad) {
            b.close();
        }
        x.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void reusingAFeatureThatWasNeverComputedIsAClearError() {
        ToyDiT toy = new ToyDiT(ops, 3);
        CachePolicy lazy = info -> ctx -> ctx.block() == 2 && ctx.branch() == Branch.MLP ? Decision.REUSE : Decision.COMPUTE;
        ArrayTensor x = ops.fromFloats(new long[] {1, 1, 1, 1}, new float[] {0});
        try (GenerationSession<ArrayTensor> session = new CachedDiT<>(toy).newSession(lazy, 4)) {
            assertThatThrownBy(() -> session.forward(0, x, 999, new int[] {0}))
                    .isInstanceOf(MissingFeatureException.class)
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("decided REUSE at step 0 (loop index 3, timestep 999.0), block 2, MLP")
                    .hasMessageContaining("no value of this feature has been computed yet");
        }
        CachePolicy noHistory = new CachePolicy() {
            @Override
            public CacheDecider newSession(GenerationInfo info) {
                return ctx -> ctx.step() == 0 ? Decision.COMPUTE : Decision.REUSE;
            }

            @Override
            public int historyLength() {
                return 0;
            }
        };
        try (GenerationSession<ArrayTensor> session = new CachedDiT<>(toy).newSession(noHistory, 4)) {
            session.forward(0, x, 999, new int[] {0}).close();
            assertThatThrownBy(() -> session.forward(1, x, 666, new int[] {0}))
                    .isInstanceOf(MissingFeatureException.class)
                    .hasMessageContaining("block 0, ATTENTION")
                    .hasMessageContaining("historyLength() is 0");
        }
        x.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void foraReusesBranchOutputsButRecomputesGatesFromTheCurrentStep() {
        ToyDiT toy = new ToyDiT(ops, 2);
        ArrayTensor x = ops.fromFloats(new long[] {1, 1, 1, 1}, new float[] {0.5f});
        int[] labels = {0};
        try (GenerationSession<ArrayTensor> session = new CachedDiT<>(toy).newSession(new StaticIntervalPolicy(3), 4)) {
            // K = 4, N = 3: loop indices 3 (first, full), 2, 1 (reuse), 0 (full)
            float[] outputs = new float[4];
            float[] timesteps = {40, 30, 20, 10};
            for (int step = 0; step < 4; step++) {
                toy.calls.clear();
                try (ArrayTensor out = session.forward(step, x, timesteps[step], labels)) {
                    outputs[step] = ops.toFloats(out)[0];
                }
                assertThat(toy.calls).as("step %d", step).hasSize(step == 0 || step == 3 ? 4 : 0);
            }
            // out = x + depth * (A + M), A = t, M = 2t at the step A and M were computed
            assertThat(outputs).containsExactly(0.5f + 2 * 120, 0.5f + 2 * 120, 0.5f + 2 * 120, 0.5f + 2 * 30);
            assertThat(session.stats().fullSteps()).isEqualTo(2);
        }
        x.close();
    }

    @Test
    void everyTensorIsReleasedAfterEachStepAndAfterClose() {
        long[] shape = {2, 4, 8, 8};
        ArrayTensor x = latent(2, 3);
        GenerationSession<ArrayTensor> session = new CachedDiT<>(model).newSession(CachePolicies.parse("fora:2"), 6);
        for (int step = 0; step < 6; step++) {
            try (TensorScope scope = ops.openScope()) {
                ArrayTensor out = session.forward(step, x, 900 - 100 * step, new int[] {0, 1});
                assertThat(out.shape()).containsExactly(2, 8, 8, 8);
                // alive: x, out, and the 2 * depth cached features
                assertThat(ops.liveTensors()).isEqualTo(2 + 2 * config.depth());
            }
            assertThat(ops.liveTensors()).isEqualTo(1 + 2 * config.depth());
        }
        session.close();
        assertThat(ops.liveTensors()).isEqualTo(1);
        x.close();
        assertThat(ops.liveTensors()).isZero();
        assertThat(ops.liveBytes()).isZero();
        assertThat(shape).hasSize(4);
    }

    @Test
    void peakCacheBytesOfForaIsTwoFeaturesPerBlock() {
        int batch = 3;
        ArrayTensor x = latent(batch, 4);
        try (GenerationSession<ArrayTensor> session = new CachedDiT<>(model).newSession(new StaticIntervalPolicy(3), 10)) {
            for (int step = 0; step < 10; step++) {
                session.forward(step, x, 999 - 100 * step, new int[] {0, 1, 2}).close();
            }
            long expected = 2L * config.depth() * batch * config.tokens() * config.hiddenSize() * 4;
            assertThat(session.stats().peakCacheBytes()).isEqualTo(expected);
            assertThat(session.cache().currentBytes()).isEqualTo(expected);
        }
        x.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void statsRecordEveryDecisionAndTheComputeFraction() {
        ToyDiT toy = new ToyDiT(ops, 4);
        // attention every step, MLP only on even steps
        CachePolicy perBranch = info -> ctx -> ctx.branch() == Branch.ATTENTION || ctx.step() % 2 == 0
                ? Decision.COMPUTE : Decision.REUSE;
        ArrayTensor x = ops.fromFloats(new long[] {1, 1, 1, 1}, new float[] {0});
        try (GenerationSession<ArrayTensor> session = new CachedDiT<>(toy).newSession(perBranch, 6)) {
            for (int step = 0; step < 6; step++) {
                session.forward(step, x, 60 - 10 * step, new int[] {0}).close();
            }
            GenerationStats stats = session.stats();
            assertThat(stats.decision(1, 3, Branch.ATTENTION)).isEqualTo(Decision.Kind.COMPUTE);
            assertThat(stats.decision(1, 3, Branch.MLP)).isEqualTo(Decision.Kind.REUSE);
            assertThat(stats.decision(2, 0, Branch.MLP)).isEqualTo(Decision.Kind.COMPUTE);
            assertThat(stats.count(Decision.Kind.COMPUTE, Branch.ATTENTION)).isEqualTo(24);
            assertThat(stats.count(Decision.Kind.COMPUTE, Branch.MLP)).isEqualTo(12);
            assertThat(stats.count(Decision.Kind.REUSE)).isEqualTo(12);
            assertThat(stats.computeFraction()).isEqualTo(36.0 / 48);
            assertThat(stats.speedup()).isCloseTo(48.0 / 36, within(1e-12));
            assertThat(stats.fullSteps()).isEqualTo(3);
            // FLOPs per sample for T = 1, D = 1: attention 8 + 4 = 12, MLP 16
            double flopFraction = (24 * 12.0 + 12 * 16.0) / (24 * 12.0 + 24 * 16.0);
            assertThat(stats.flopComputeFraction()).isCloseTo(flopFraction, within(1e-12));
            assertThat(stats.decisionMap()).startsWith("   0 CCCCCCCC\n   1 CRCRCRCR\n");
            assertThatThrownBy(() -> stats.decision(6, 0, Branch.MLP)).isInstanceOf(IllegalArgumentException.class);
            assertThat(stats.toString()).contains("6/6 steps", "3 full");
        }
        x.close();
    }

    @Test
    void foraStatsAtFiftyStepsMatchThePaper() {
        ToyDiT toy = new ToyDiT(ops, 2);
        ArrayTensor x = ops.fromFloats(new long[] {1, 1, 1, 1}, new float[] {0});
        try (GenerationSession<ArrayTensor> session = new CachedDiT<>(toy).newSession(new StaticIntervalPolicy(3), 50)) {
            for (int step = 0; step < 50; step++) {
                session.forward(step, x, 999 - 20 * step, new int[] {0}).close();
            }
            assertThat(session.stats().fullSteps()).isEqualTo(18);
            assertThat(session.stats().computeFraction()).isEqualTo(18 / 50.0);
            assertThat(session.stats().speedup()).isCloseTo(2.78, within(0.01));
            assertThat(session.stats().flopSpeedup()).isCloseTo(50 / 18.0, within(1e-9));
        }
        x.close();
    }

    @Test
    void flopFormulaForDitXl() {
        DiTConfig xl = new DiTConfig(32, 4, 2, 1152, 28, 16, 1000, true);
        assertThat(xl.tokens()).isEqualTo(256);
        double t = 256;
        double d = 1152;
        assertThat(xl.attentionFlopsPerSample()).isEqualTo(8 * t * d * d + 4 * t * t * d);
        assertThat(xl.mlpFlopsPerSample()).isEqualTo(16 * t * d * d);
        // blocks dominate DiT-XL/2's ~119 GFLOPs (counted as multiply-adds = 2 FLOPs, ~238 GFLOP here)
        double blocks = 28 * (xl.attentionFlopsPerSample() + xl.mlpFlopsPerSample());
        assertThat(blocks / 2 / 1e9).isBetween(110.0, 125.0);
    }
}
