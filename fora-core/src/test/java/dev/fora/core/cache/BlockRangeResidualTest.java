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
import dev.fora.core.model.Embedding;
import dev.fora.core.model.ForwardingDiT;
import dev.fora.core.model.Modulation;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.testing.SyntheticDiT;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Test;

/** The block-range residual of the core: {@link Decision#reuseResidual}, on plain arrays. */
class BlockRangeResidualTest {

    private static final int STEPS = 4;
    private static final int IMAGES = 3;

    /** A model that records the tokens entering each block (its first branch) and the final layer, per call. */
    static final class TapDiT extends ForwardingDiT<ArrayTensor> {
        final List<float[]> blockInputs = new ArrayList<>();
        final List<Integer> blockOfInput = new ArrayList<>();
        final List<int[]> branchCalls = new ArrayList<>();
        final List<float[]> finalInputs = new ArrayList<>();

        TapDiT(SyntheticDiT inner) {
            super(inner);
        }

        @Override
        public ArrayOps ops() {
            return (ArrayOps) super.ops();
        }

        @Override
        public ArrayTensor branch(int block, int branch, ArrayTensor x, Modulation<ArrayTensor> m, Embedding<ArrayTensor> e) {
            branchCalls.add(new int[] {block, branch, (int) x.shape()[0]});
            if (branch == 0) {
                blockInputs.add(ops().toFloats(x));
                blockOfInput.add(block);
            }
            return super.branch(block, branch, x, m, e);
        }

        @Override
        public ArrayTensor finalLayer(ArrayTensor x, Embedding<ArrayTensor> e) {
            finalInputs.add(ops().toFloats(x));
            return super.finalLayer(x, e);
        }

        /** The last recorded input of {@code block}. */
        float[] lastInputOf(int block) {
            for (int i = blockOfInput.size() - 1; i >= 0; i--) {
                if (blockOfInput.get(i) == block) {
                    return blockInputs.get(i);
                }
            }
            throw new AssertionError("block " + block + " never ran");
        }
    }

    /**
     * A policy whose decider for image {@code k} (creation order) asks {@code rule(k, ctx)}; it
     * keeps the residual of {@code ranges}, no branch values.
     */
    static CachePolicy rule(Set<BlockRange> ranges, Set<Measurement> measured, BiFunction<Integer, StepContext, Decision> rule) {
        int[] created = {0};
        return new CachePolicy() {
            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                int k = created[0]++ % info.images();
                return ctx -> rule.apply(k, ctx);
            }

            @Override
            public Set<BlockRange> blockRanges(GenerationInfo info) {
                return ranges;
            }

            @Override
            public Set<Measurement> measurements(GenerationInfo info) {
                return measured;
            }

            @Override
            public int historyLength() {
                return 0;
            }
        };
    }

    private static ArrayTensor latent(ArrayOps ops, DiTConfig c, long seed) {
        long[] shape = {2L * IMAGES, c.inChannels(), c.inputSize(), c.inputSize()};
        return ops.fromFloats(shape, new SeededGaussianNoise(seed).next(shape));
    }

    private static Conditioning guidedLabels() {
        return ClassLabels.of(1, 4, 7, 10, 10, 10);
    }

    @Test
    void skippingARangeAddsTheCachedResidualAndCallsNothingOfItsBlocksForThoseImages() {
        ArrayOps ops = new ArrayOps();
        TapDiT model = new TapDiT(new SyntheticDiT(ops, 3));
        int depth = model.config().depth();
        BlockRange rest = new BlockRange(1, depth);
        // step 0: everyone computes; step 1: image 1 skips blocks 1.., images 0 and 2 compute
        CachePolicy policy = rule(Set.of(rest), Set.of(), (k, ctx) -> ctx.step().step() == 1 && k == 1 && ctx.block() == 1
                ? Decision.reuseResidual(depth) : Decision.COMPUTE);
        TapDiT plain = new TapDiT(new SyntheticDiT(new ArrayOps(), 3));
        float[] cachedOut;
        float[] referenceBlock1;
        float[] referenceOut;
        try (Generation<ArrayTensor> g = Generation.builder(model, policy).steps(STEPS).images(IMAGES).guided(true).open();
                Generation<ArrayTensor> all = Generation.builder(plain, NoCache.INSTANCE).steps(STEPS).images(IMAGES).guided(true)
                        .open()) {
            ArrayTensor x0 = latent(ops, model.config(), 1);
            ArrayTensor x1 = latent(ops, model.config(), 2);
            g.predict(new SamplingStep(0, STEPS, 900), x0, guidedLabels()).close();
            float[] residualInput = model.lastInputOf(1);
            float[] residualOutput = model.finalInputs.get(0);
            assertThat(g.residualComputedAt(rest, 1)).hasValue(0);
            int callsBefore = model.branchCalls.size();
            g.predict(new SamplingStep(1, STEPS, 800), x1, guidedLabels()).close();
            cachedOut = model.finalInputs.get(1);

            ArrayOps plainOps = plain.ops();
            try (ArrayTensor p0 = plainOps.fromFloats(x0.shape(), ops.toFloats(x0));
                    ArrayTensor p1 = plainOps.fromFloats(x1.shape(), ops.toFloats(x1))) {
                all.predict(new SamplingStep(0, STEPS, 900), p0, guidedLabels()).close();
                all.predict(new SamplingStep(1, STEPS, 800), p1, guidedLabels()).close();
            }
            referenceBlock1 = plain.lastInputOf(1);
            referenceOut = plain.finalInputs.get(1);

            // image 1 = rows 1 and 4: h_out(0) of this step + (h_out(last) - h_in(1)) of step 0, elementwise in float
            int per = cachedOut.length / (2 * IMAGES);
            for (int row = 0; row < 2 * IMAGES; row++) {
                boolean skipped = row == 1 || row == 4;
                for (int i = row * per; i < (row + 1) * per; i++) {
                    float expected = skipped
                            ? (float) ((double) referenceBlock1[i] + (float) ((double) residualOutput[i] - residualInput[i]))
                            : referenceOut[i];
                    assertThat(cachedOut[i]).as("row %d element %d", row, i - row * per).isEqualTo(expected);
                }
            }
            // at step 1 the blocks >= 1 ran only the four rows of images 0 and 2
            for (int[] call : model.branchCalls.subList(callsBefore, model.branchCalls.size())) {
                assertThat(call[2]).as("rows of block %d branch %d", call[0], call[1]).isEqualTo(call[0] == 0 ? 6 : 4);
            }
            GenerationStats stats = g.stats();
            for (int b = 1; b < depth; b++) {
                assertThat(stats.decision(1, 1, b, 0)).isEqualTo(Decision.Kind.REUSE);
                assertThat(stats.decision(1, 1, b, 1)).isEqualTo(Decision.Kind.REUSE);
                assertThat(stats.decision(1, 0, b, 1)).isEqualTo(Decision.Kind.COMPUTE);
            }
            assertThat(stats.decision(1, 1, 0, 1)).isEqualTo(Decision.Kind.COMPUTE);
            assertThat(stats.residualReuses()).isEqualTo(1);
            assertThat(stats.count(Decision.Kind.REUSE)).isEqualTo((depth - 1) * 2);
            // image 1 did not compute the range at step 1: its residual stays the one of step 0
            assertThat(g.residualComputedAt(rest, 1)).hasValue(0);
            assertThat(g.residualComputedAt(rest, 0)).hasValue(1);
            // the cache held the one range residual: 6 rows x tokens x hidden x 4 bytes
            assertThat(stats.peakCacheBytes()).isEqualTo(6 * model.config().featureBytesPerRow());
            x0.close();
            x1.close();
        }
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void wholeBatchSkipsAddTheResidualInOneOpAndSkipEveryBlock() {
        ArrayOps ops = new ArrayOps();
        TapDiT model = new TapDiT(new SyntheticDiT(ops, 5));
        int depth = model.config().depth();
        BlockRange all = new BlockRange(0, depth);
        CachePolicy skipOdd = rule(Set.of(all), Set.of(), (k, ctx) -> ctx.step().step() % 2 == 1 && ctx.block() == 0
                ? Decision.reuseResidual(depth) : Decision.COMPUTE);
        try (Generation<ArrayTensor> g = Generation.builder(model, skipOdd).steps(STEPS).images(IMAGES).guided(true).open()) {
            ArrayTensor x = latent(ops, model.config(), 3);
            for (int s = 0; s < STEPS; s++) {
                int calls = model.branchCalls.size();
                g.predict(new SamplingStep(s, STEPS, 900 - 100 * s), x, guidedLabels()).close();
                assertThat(model.branchCalls.size() - calls).isEqualTo(s % 2 == 1 ? 0 : depth * 2);
            }
            // step 1: the final layer sees the tokens of step 1 + (h_out(last) - tokens) of step 0
            float[] tokens0 = model.blockInputs.get(0);
            float[] out0 = model.finalInputs.get(0);
            float[] out1 = model.finalInputs.get(1);
            float[] tokens1;
            float[] t1 = new float[2 * IMAGES];
            java.util.Arrays.fill(t1, 800f);
            try (dev.fora.core.tensor.TensorScope scope = ops.openScope()) {
                tokens1 = ops.toFloats(model.delegate().embed(x, t1, guidedLabels()).tokens());
            }
            for (int i = 0; i < out1.length; i++) {
                assertThat(out1[i]).isEqualTo((float) ((double) tokens1[i] + (float) ((double) out0[i] - tokens0[i])));
            }
            assertThat(g.stats().computeFraction()).isEqualTo(0.5);
            assertThat(g.stats().residualReuses()).isEqualTo(2 * IMAGES);
            x.close();
        }
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void residualMagnitudeIsTheMeanAbsoluteResidualOfTheImagesThatComputedTheRange() {
        ArrayOps ops = new ArrayOps();
        TapDiT model = new TapDiT(new SyntheticDiT(ops, 7));
        int depth = model.config().depth();
        BlockRange all = new BlockRange(0, depth);
        Measurement magnitude = Measurement.residualMagnitude(all);
        List<double[]> seen = new ArrayList<>();
        int[] created = {0};
        CachePolicy policy = new CachePolicy() {
            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                int k = created[0]++;
                return new CacheDecider() {
                    @Override
                    public Decision decide(StepContext ctx) {
                        return ctx.step().step() == 1 && k == 0 && ctx.block() == 0 ? Decision.reuseResidual(depth)
                                : Decision.COMPUTE;
                    }

                    @Override
                    public void endStep(StepContext ctx) {
                        assertThat(ctx.block()).isEqualTo(depth);
                        assertThatThrownBy(ctx::branch).isInstanceOf(IllegalStateException.class);
                        seen.add(new double[] {ctx.step().step(), k, ctx.measurement(magnitude).orElse(-1)});
                    }
                };
            }

            @Override
            public Set<BlockRange> blockRanges(GenerationInfo info) {
                return Set.of(all);
            }

            @Override
            public Set<Measurement> measurements(GenerationInfo info) {
                return Set.of(magnitude);
            }
        };
        try (Generation<ArrayTensor> g = Generation.builder(model, policy).steps(STEPS).images(IMAGES).guided(true).open()) {
            ArrayTensor x = latent(ops, model.config(), 4);
            g.predict(new SamplingStep(0, STEPS, 900), x, guidedLabels()).close();
            g.predict(new SamplingStep(1, STEPS, 800), x, guidedLabels()).close();
            x.close();
        }
        float[] in0 = model.blockInputs.get(0);
        float[] out0 = model.finalInputs.get(0);
        int per = in0.length / (2 * IMAGES);
        for (double[] v : seen) {
            int step = (int) v[0];
            int image = (int) v[1];
            if (step == 1 && image == 0) {
                assertThat(v[2]).as("image 0 skipped the range at step 1: no magnitude").isEqualTo(-1);
            } else if (step == 0) {
                double sum = 0;
                for (int row : new int[] {image, image + IMAGES}) {
                    for (int i = row * per; i < (row + 1) * per; i++) {
                        sum += Math.abs((float) ((double) out0[i] - in0[i]));
                    }
                }
                assertThat(v[2]).isCloseTo(sum / (2.0 * per), within(1e-9));
            } else {
                assertThat(v[2]).isPositive();
            }
        }
        assertThat(seen).hasSize(2 * IMAGES);
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void residualReuseIsCheckedWhereItIsDecided() {
        ArrayOps ops = new ArrayOps();
        SyntheticDiT model = new SyntheticDiT(ops, 3);
        int depth = model.config().depth();
        BlockRange rest = new BlockRange(1, depth);
        ArrayTensor x = latent(ops, model.config(), 5);
        // at the second branch of a block
        CachePolicy atMlp = rule(Set.of(rest), Set.of(), (k, ctx) -> ctx.step().step() == 1 && ctx.block() == 1
                && ctx.branchIndex() == 1 ? Decision.reuseResidual(depth) : Decision.COMPUTE);
        // a range never declared
        CachePolicy undeclared = rule(Set.of(rest), Set.of(), (k, ctx) -> ctx.step().step() == 1 && ctx.block() == 2
                ? Decision.reuseResidual(depth) : Decision.COMPUTE);
        // before any residual is computed
        CachePolicy early = rule(Set.of(rest), Set.of(), (k, ctx) -> ctx.block() == 1 ? Decision.reuseResidual(depth)
                : Decision.COMPUTE);
        for (CachePolicy p : List.of(atMlp, undeclared)) {
            try (Generation<ArrayTensor> g = Generation.builder(model, p).steps(STEPS).images(IMAGES).guided(true).open()) {
                g.predict(new SamplingStep(0, STEPS, 900), x, guidedLabels()).close();
                assertThatThrownBy(() -> g.predict(new SamplingStep(1, STEPS, 800), x, guidedLabels()))
                        .isInstanceOf(IllegalStateException.class)
                        .hasMessageContaining("REUSE_RESIDUAL(to block " + depth + ")")
                        .hasMessageContaining("step 1")
                        .hasMessageMatching(p == atMlp ? "(?s).*first branch of a block.*" : "(?s).*did not declare blocks 2.."
                                + (depth - 1) + ".*");
            }
        }
        try (Generation<ArrayTensor> g = Generation.builder(model, early).steps(STEPS).images(IMAGES).guided(true).open()) {
            assertThatThrownBy(() -> g.predict(new SamplingStep(0, STEPS, 900), x, guidedLabels()))
                    .isInstanceOf(MissingFeatureException.class)
                    .hasMessageContaining("no residual of blocks 1.." + (depth - 1) + " has been computed yet");
        }
        CachePolicy tooDeep = rule(Set.of(new BlockRange(2, depth + 1)), Set.of(), (k, ctx) -> Decision.COMPUTE);
        assertThatThrownBy(() -> Generation.builder(model, tooDeep).steps(STEPS).images(1).open())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("declares blocks 2.." + depth);
        x.close();
        assertThat(ops.liveTensors()).isZero();
        assertThatThrownBy(() -> Decision.reuseResidual(0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Decision.COMPUTE.toBlock()).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> new BlockRange(3, 3)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void eachDeclaredRangeCountsInTheCacheBudget() {
        SyntheticDiT model = new SyntheticDiT(new ArrayOps(), 3);
        long perRange = 2L * IMAGES * model.config().featureBytesPerRow();
        CachePolicy fb = CachePolicies.parse("fbcache:0.1");
        // one residual and one reference of block 0's residual
        Generation.builder(model, fb).steps(STEPS).images(IMAGES).guided(true).cacheBudget(2 * perRange).open().close();
        assertThatThrownBy(() -> Generation.builder(model, fb).steps(STEPS).images(IMAGES).guided(true)
                .cacheBudget(2 * perRange - 1).open())
                .isInstanceOf(CacheBudgetException.class)
                .hasMessageContaining("1 block-range residual(s)");
        CachePolicy delta = CachePolicies.parse("deltadit:2,2");
        Generation.builder(model, delta).steps(STEPS).images(IMAGES).guided(true).cacheBudget(2 * perRange).open().close();
        assertThatThrownBy(() -> Generation.builder(model, delta).steps(STEPS).images(IMAGES).guided(true)
                .cacheBudget(2 * perRange - 1).open())
                .isInstanceOf(CacheBudgetException.class)
                .hasMessageContaining("2 block-range residual(s)");
    }
}
