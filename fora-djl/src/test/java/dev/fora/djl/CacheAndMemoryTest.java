package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.fora.core.cache.CacheDecider;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.sampling.SeededGaussianNoise;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Reuse really skips TorchScript calls, the cache holds exactly what FORA needs, and a
 * generation leaves no native array behind.
 */
class CacheAndMemoryTest {

    private static final int K = 50;

    @Test
    void foraCallsEachBranchOnlyOnFullSteps() throws Exception {
        DiTPipeline p = TestModels.pipeline();
        int depth = p.config().depth();
        // the stage path (uniform steps otherwise run as one fused call each)
        GeneratedImages fora = p.generate(GenerationRequest.builder(1).steps(K).policy("fora:3").fusedSteps(false).build());
        GeneratedImages none = p.generate(GenerationRequest.builder(1).steps(K).policy("none").fusedSteps(false).build());
        System.out.println("fora:3 " + fora.calls() + "\nnone   " + none.calls());

        long[] eighteen = new long[depth];
        long[] fifty = new long[depth];
        java.util.Arrays.fill(eighteen, 18);
        java.util.Arrays.fill(fifty, 50);
        assertThat(fora.calls().calls("attn")).containsExactly(eighteen);
        assertThat(fora.calls().calls("mlp")).containsExactly(eighteen);
        assertThat(none.calls().calls("attn")).containsExactly(fifty);
        assertThat(none.calls().calls("mlp")).containsExactly(fifty);
        // one image with CFG: every call runs its two rows
        assertThat(fora.calls().totalBranchRows()).isEqualTo(2 * fora.calls().totalBranchCalls());
        for (TorchScriptCalls c : List.of(fora.calls(), none.calls())) {
            assertThat(c.embed()).isEqualTo(K);
            assertThat(c.modulation()).isEqualTo(K);
            assertThat(c.finalLayer()).isEqualTo(K);
            assertThat(c.forward()).isZero();
        }
        assertThat(fora.stats().fullSteps()).isEqualTo(18);
        // fused: one call per step, 18 full and 32 cached
        GeneratedImages fused = p.generate(GenerationRequest.builder(1).steps(K).policy("fora:3").build());
        assertThat(fused.calls().fullSteps()).isEqualTo(18);
        assertThat(fused.calls().cachedSteps()).isEqualTo(32);
        assertThat(fused.calls().totalBranchCalls() + fused.calls().embed() + fused.calls().finalLayer()).isZero();
    }

    @Test
    void peakCacheBytesAreTwoBranchesPerBlock() throws Exception {
        DiTPipeline p = TestModels.pipeline();
        var c = p.config();
        int[] labels = {2, 4, 6};
        int batch = 2 * labels.length; // CFG: [x; x]
        long expected = 2L * c.depth() * batch * c.tokens() * c.hiddenSize() * 4;
        GeneratedImages fora = p.generate(GenerationRequest.builder(labels).steps(10).policy("fora:3").build());
        GeneratedImages none = p.generate(GenerationRequest.builder(labels).steps(10).policy("none").build());
        assertThat(fora.stats().peakCacheBytes()).isEqualTo(expected);
        assertThat(none.stats().peakCacheBytes()).isZero();
    }

    /**
     * A FORA policy that, every time it is asked, records every NDArray alive under the model:
     * a view of native memory in the middle of each step.
     */
    private static final class SpyingPolicy implements CachePolicy {
        final Set<NDArray> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        final NDManager root;
        final CachePolicy inner = CachePolicies.parse("fora:3");
        int maxAlive;

        SpyingPolicy(NDManager root) {
            this.root = root;
        }

        @Override
        public CacheDecider newDecider(GenerationInfo info) {
            CacheDecider d = inner.newDecider(info);
            return ctx -> {
                List<NDArray> alive = root.getManagedArrays();
                maxAlive = Math.max(maxAlive, alive.size());
                seen.addAll(alive);
                return d.decide(ctx);
            };
        }
    }

    @Test
    void aGenerationLeavesNoArrayAlive() throws Exception {
        DiTPipeline p = TestModels.pipeline();
        NDManager root = p.manager();
        List<NDArray> before = root.getManagedArrays();
        SpyingPolicy spy = new SpyingPolicy(root);
        GeneratedImages g = p.generate(GenerationRequest.builder(0, 9).steps(K).policy(spy).build());
        assertThat(g.stats().fullSteps()).isEqualTo(18);
        spy.seen.removeAll(before);
        System.out.println("arrays seen alive during the generation: " + spy.seen.size() + ", at most " + spy.maxAlive
                + " at once");
        assertThat(spy.seen).hasSizeGreaterThan(2 * p.config().depth());
        assertThat(spy.seen).allSatisfy(a -> assertThat(a.isReleased()).isTrue());
        assertThat(root.getManagedArrays()).hasSameSizeAs(before);
        // Memory stays flat over the loop: the arrays alive at once do not grow with the steps.
        assertThat(spy.maxAlive).isLessThan(200);
    }

    @Test
    void aStepFreesEverythingButTheCacheAndItsOutput() throws Exception {
        DiTPipeline p = TestModels.pipeline();
        var c = p.config();
        int[] labels = {3, 7};
        long[] shape = {labels.length, c.inChannels(), c.inputSize(), c.inputSize()};
        DiffusionSchedule schedule = p.schedule(K);
        List<NDArray> before = p.manager().getManagedArrays();
        Set<NDArray> generationArrays = Collections.newSetFromMap(new IdentityHashMap<>());
        long cacheBytes;
        try (NDManager mine = NDManager.newBaseManager();
             DjlGeneration generation = p.openGeneration(CachePolicies.parse("fora:3"), K, labels.length, true)) {
            NDArray x = mine.create(new SeededGaussianNoise(5).next(shape), new Shape(shape));
            for (int step = 0; step < K; step++) {
                NDArray out = generation.predictGuided(SamplingStep.of(schedule, step), x, ClassLabels.of(labels), 1.5);
                assertThat(out.getManager()).isSameAs(mine);
                out.close();
                // After a step only the cache is left in the generation: one array per block and branch,
                // views of the stacked features of the last (fused) full step, which it keeps too.
                List<NDArray> held = generation.manager().getManagedArrays();
                assertThat(held).hasSize(2 * c.depth() + 1);
                generationArrays.addAll(held);
            }
            cacheBytes = generation.cacheBytes();
            assertThat(generation.stats().peakCacheBytes()).isEqualTo(cacheBytes);
        }
        assertThat(cacheBytes).isEqualTo(2L * c.depth() * 2 * labels.length * c.tokens() * c.hiddenSize() * 4);
        // 18 refreshes x 12 branch outputs, each released when replaced or at close, and one stack:
        // each refresh writes into the stack of the one before, which nothing reads any more.
        assertThat(generationArrays).hasSize(18 * 2 * c.depth() + 1);
        assertThat(generationArrays).allSatisfy(a -> assertThat(a.isReleased()).isTrue());
        assertThat(p.manager().getManagedArrays()).hasSameSizeAs(before);
    }
}
