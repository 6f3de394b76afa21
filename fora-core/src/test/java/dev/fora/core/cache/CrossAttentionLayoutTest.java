package dev.fora.core.cache;

import dev.fora.core.engine.CacheBudgetException;
import dev.fora.core.engine.Generation;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fora.core.model.BlockLayout;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.TextEmbeddings;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.testing.HarnessReport;
import dev.fora.core.testing.PolicyHarness;
import dev.fora.core.testing.SyntheticDiT;
import org.junit.jupiter.api.Test;

/** A PixArt-α-like layout (self-attention, ungated cross-attention to text, MLP) through the core. */
class CrossAttentionLayoutTest {

    private static final DiTConfig CONFIG = SyntheticDiT.CROSS_ATTENTION_SMALL;

    private final ArrayOps ops = new ArrayOps();
    private final SyntheticDiT model = new SyntheticDiT(ops, CONFIG, 5);

    private static TextEmbeddings text(int rows) {
        boolean[] mask = new boolean[rows * 6];
        for (int r = 0; r < rows; r++) {
            for (int t = 0; t <= r % 6; t++) {
                mask[r * 6 + t] = true;
            }
        }
        return new TextEmbeddings(6, 16, new SeededGaussianNoise(9).next(new long[] {rows, 6, 16}), mask);
    }

    private ArrayTensor latent(int n) {
        long[] shape = {n, 4, 8, 8};
        return ops.fromFloats(shape, new SeededGaussianNoise(4).next(shape));
    }

    @Test
    void theLayoutHasThreeBranchesAndTheCrossAttentionIsUngated() {
        assertThat(CONFIG.layout()).isEqualTo(BlockLayout.CROSS_ATTENTION);
        assertThat(CONFIG.branches()).isEqualTo(3);
        assertThat(CONFIG.features()).isEqualTo(3 * CONFIG.depth());
        assertThat(CONFIG.layout().branch(1).gated()).isFalse();
        assertThat(CONFIG.layout().indexOf("cross")).isEqualTo(1);
        // cross-attention FLOPs: q/out projections 4TD^2, k/v of 6 text tokens 4LD^2, scores and values 4TLD
        double t = 16;
        double d = 32;
        assertThat(CONFIG.branchFlopsPerSample(1)).isEqualTo(4 * t * d * d + 4 * 6 * d * d + 4 * t * 6 * d);
    }

    @Test
    void computingEverythingEqualsThePlainForwardBitForBit() {
        int k = 4;
        try (ArrayTensor x = latent(3);
                Generation<ArrayTensor> g = Generation.builder(model, NoCache.INSTANCE).steps(k).images(3).open()) {
            for (int step = 0; step < k; step++) {
                float t = 900 - 200 * step;
                try (ArrayTensor cached = g.predict(new SamplingStep(step, k, t), x, text(3));
                        ArrayTensor plain = model.forward(x, new float[] {t, t, t}, text(3))) {
                    assertThat(ops.toFloats(cached)).as("step %d", step).containsExactly(ops.toFloats(plain));
                }
            }
        }
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void foraReusesAllThreeBranchesAndReuseOfOneBranchIsPerFeature() {
        RecordingDiT recording = new RecordingDiT(model);
        int k = 7;
        // FORA N = 3: full steps 0, 3, 6; every feature of a full step is computed
        try (ArrayTensor x = latent(2);
                Generation<ArrayTensor> g = Generation.builder(recording, new StaticIntervalPolicy(3)).steps(k).images(2).open()) {
            for (int step = 0; step < k; step++) {
                g.predict(new SamplingStep(step, k, 999 - 100 * step), x, text(2)).close();
            }
            assertThat(recording.branchCalls).hasSize(3 * CONFIG.features());
            assertThat(g.stats().fullSteps()).isEqualTo(3);
            // the cache holds one value of every (block, branch): 3 per block
            assertThat(g.cacheBytes()).isEqualTo(CONFIG.features() * 2 * CONFIG.featureBytesPerRow());
        }
        // only the cross-attention branch is cached between steps
        recording.branchCalls.clear();
        CachePolicy crossOnly = info -> ctx -> ctx.step().step() == 0 || !ctx.branch().name().equals("cross")
                ? Decision.COMPUTE : Decision.REUSE;
        try (ArrayTensor x = latent(2);
                Generation<ArrayTensor> g = Generation.builder(recording, crossOnly).steps(k).images(2).open()) {
            for (int step = 0; step < k; step++) {
                g.predict(new SamplingStep(step, k, 999 - 100 * step), x, text(2)).close();
            }
            assertThat(recording.branchCalls).filteredOn(c -> c.branch() == 1).hasSize(CONFIG.depth());
            assertThat(recording.branchCalls).filteredOn(c -> c.branch() != 1).hasSize(k * 2 * CONFIG.depth());
            assertThat(g.stats().decision(3, 1, 2, 1)).isEqualTo(Decision.Kind.REUSE);
            assertThat(g.stats().decision(3, 1, 2, 2)).isEqualTo(Decision.Kind.COMPUTE);
        }
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void foraAndForecastsRunThroughTheHarnessAndStayCloseToTheUncachedRun() {
        PolicyHarness harness = PolicyHarness.builder().config(CONFIG).steps(30).batch(3).build();
        HarnessReport none = harness.run("none");
        HarnessReport fora = harness.run("fora:3");
        HarnessReport taylor = harness.run("taylorseer:3");
        assertThat(none.maxAbsError()).isZero();
        assertThat(fora.relativeL1Error()).isPositive().isLessThan(0.2);
        assertThat(taylor.relativeL1Error()).isPositive().isLessThan(fora.relativeL1Error());
        assertThat(fora.decision(1, 2, 0, "cross")).isEqualTo(Decision.Kind.REUSE);
        assertThat(taylor.decision(7, 2, 0, "cross")).isEqualTo(Decision.Kind.FORECAST);
        assertThat(fora.computeFraction()).isEqualTo(fora.computeFraction(2));
        for (HarnessReport r : new HarnessReport[] {none, fora, taylor}) {
            assertThat(r.leakedTensors()).as(r.toString()).isZero();
        }
        assertThat(harness.batchInvarianceError(new TaylorSeerPolicy(3))).isZero();
    }

    @Test
    void wrongConditioningIsATypedErrorThatUsesNoStep() {
        try (ArrayTensor x = latent(2);
                Generation<ArrayTensor> g = Generation.builder(model, NoCache.INSTANCE).steps(2).images(2).open()) {
            SamplingStep first = new SamplingStep(0, 2, 999);
            assertThatThrownBy(() -> g.predict(first, x, ClassLabels.of(1, 2))).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("text embeddings");
            TextEmbeddings narrow = new TextEmbeddings(6, 8, new float[2 * 6 * 8], new boolean[] {
                true, false, false, false, false, false, true, false, false, false, false, false});
            assertThatThrownBy(() -> g.predict(first, x, narrow)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("6 tokens x 8").hasMessageContaining("6 tokens x 16");
            assertThatThrownBy(() -> g.predict(first, x, text(3))).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("3 rows");
            assertThat(g.nextStep()).isZero();
            g.predict(first, x, text(2)).close();
            assertThat(g.nextStep()).isEqualTo(1);
        }
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void aCacheBudgetRefusesAPolicyWhoseWorstCaseDoesNotFit() {
        long perFeature = 2L * 2 * CONFIG.featureBytesPerRow(); // 2 images, guided: 4 rows
        long fora = CONFIG.features() * perFeature;
        Generation.builder(model, new StaticIntervalPolicy(3)).steps(10).images(2).guided(true).cacheBudget(fora).open().close();
        assertThatThrownBy(() -> Generation.builder(model, new StaticIntervalPolicy(3)).steps(10).images(2).guided(true)
                .cacheBudget(fora - 1).open())
                .isInstanceOfSatisfying(CacheBudgetException.class, e -> {
                    assertThat(e.needBytes()).isEqualTo(fora);
                    assertThat(e.budgetBytes()).isEqualTo(fora - 1);
                })
                .hasMessageContaining("fora:3").hasMessageContaining(Long.toString(fora))
                .hasMessageContaining(Long.toString(fora - 1));
        // TaylorSeer keeps two values per feature
        assertThatThrownBy(() -> Generation.builder(model, new TaylorSeerPolicy(3)).steps(10).images(2).guided(true)
                .cacheBudget(fora).open()).isInstanceOf(CacheBudgetException.class)
                .hasMessageContaining(Long.toString(2 * fora));
        // a policy that caches nothing fits any budget
        Generation.builder(model, NoCache.INSTANCE).steps(10).images(2).cacheBudget(0).open().close();
        assertThatThrownBy(() -> PolicyHarness.builder().config(CONFIG).cacheBudget(1000).build().run("fora:2"))
                .isInstanceOf(CacheBudgetException.class);
        assertThat(ops.liveTensors()).isZero();
    }
}
