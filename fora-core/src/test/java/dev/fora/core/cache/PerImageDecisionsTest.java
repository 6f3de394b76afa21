package dev.fora.core.cache;

import dev.fora.core.engine.GenerationStats;
import dev.fora.core.engine.Generation;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.Conditioning;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.DdimSampler;
import dev.fora.core.sampling.DdpmSampler;
import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.NoiseSource;
import dev.fora.core.sampling.PerImageNoise;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.testing.PolicyHarness;
import dev.fora.core.testing.SyntheticDiT;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalDouble;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Decisions per image: sub-batches, reuse and forecasts per image, batch invariance, separate CFG halves. */
class PerImageDecisionsTest {

    private static final int STEPS = 12;
    private static final double CFG = 1.5;

    /**
     * An FBCache-like per-image rule: block 0 always computes; the later blocks compute when the
     * residual change of block 0, accumulated since this image's last compute, passes the
     * threshold, and are reused otherwise.
     */
    static CachePolicy firstBlockRule(double threshold) {
        return new CachePolicy() {
            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                return new CacheDecider() {
                    private double accumulated;
                    private boolean compute;

                    @Override
                    public Decision decide(StepContext ctx) {
                        if (ctx.block() == 0) {
                            return Decision.COMPUTE;
                        }
                        if (ctx.block() == 1 && ctx.branchIndex() == 0) {
                            OptionalDouble change = ctx.measurement(Measurement.residualChange(0));
                            accumulated += change.orElse(Double.POSITIVE_INFINITY);
                            compute = accumulated > threshold;
                            if (compute) {
                                accumulated = 0;
                            }
                        }
                        return compute ? Decision.COMPUTE : Decision.REUSE;
                    }
                };
            }

            @Override
            public Set<Measurement> measurements(GenerationInfo info) {
                return Set.of(Measurement.residualChange(0));
            }

            @Override
            public String toString() {
                return "first-block rule " + threshold;
            }
        };
    }

    /**
     * A test-only policy whose k-th decider (in creation order, i.e. image k of the batch) follows
     * {@code perImage.apply(k)}: image-dependent decisions without any measurement.
     */
    static CachePolicy byCreationOrder(IntFunction<CachePolicy> perImage, int history) {
        AtomicInteger created = new AtomicInteger();
        return new CachePolicy() {
            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                return perImage.apply(created.getAndIncrement()).newDecider(info);
            }

            @Override
            public int historyLength() {
                return history;
            }
        };
    }

    /** Images {@code ids} (image id k: label k % 10, noise seed 100 + k) generated in one batch; one array per image. */
    static float[][] generate(RecordingDiT model, CachePolicy policy, int[] ids, DiffusionSampler sampler) {
        ArrayOps ops = model.ops();
        List<NoiseSource> noise = new ArrayList<>();
        int[] labels = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            noise.add(new SeededGaussianNoise(100 + ids[i]));
            labels[i] = ids[i] % 10;
        }
        Conditioning c = ClassLabels.of(labels);
        long[] shape = {ids.length, 4, 8, 8};
        float[] all;
        try (Generation<ArrayTensor> g = Generation.builder(model, policy).steps(sampler.steps()).images(ids.length)
                .guided(true).open();
                ArrayTensor out = sampler.sample(ops, new ClassifierFreeGuidance<>(ops, g, CFG, model.unconditional()), shape, c,
                        new PerImageNoise(noise))) {
            all = ops.toFloats(out);
        }
        assertThat(ops.liveTensors()).as("tensors left behind").isZero();
        int per = all.length / ids.length;
        float[][] images = new float[ids.length][per];
        for (int i = 0; i < ids.length; i++) {
            System.arraycopy(all, i * per, images[i], 0, per);
        }
        return images;
    }

    private static RecordingDiT model() {
        return new RecordingDiT(new SyntheticDiT(new ArrayOps(), 3));
    }

    private static DiffusionSampler ddim() {
        return new DdimSampler(DiffusionSchedule.linear(1000).respace(STEPS));
    }

    @Test
    void imagesThatComputeRunAsOneSubBatchAndTheOthersNeverTouchTheModel() {
        // image k refreshes every k+1 steps (FORA's rule with N = k+1)
        CachePolicy policy = byCreationOrder(k -> new StaticIntervalPolicy(k + 1), 1);
        RecordingDiT model = model();
        float[][] together = generate(model, policy, new int[] {0, 1, 2}, ddim());

        int depth = model.config().depth();
        int branches = model.config().branches();
        List<RecordingDiT.Call> calls = model.branchCalls;
        int expectedCalls = 0;
        int expectedRows = 0;
        int callIndex = 0;
        for (int step = 0; step < STEPS; step++) {
            int loopIndex = STEPS - 1 - step;
            int computing = 0;
            for (int k = 0; k < 3; k++) {
                computing += step == 0 || loopIndex % (k + 1) == 0 ? 1 : 0;
            }
            for (int f = 0; f < depth * branches; f++) {
                RecordingDiT.Call call = calls.get(callIndex++);
                // two rows (conditional and unconditional) per computing image, in one call
                assertThat(call.rows()).as("step %d feature %d", step, f).isEqualTo(2 * computing);
            }
            expectedCalls += depth * branches;
            expectedRows += depth * branches * 2 * computing;
        }
        assertThat(calls).hasSize(expectedCalls);
        assertThat(model.rows()).isEqualTo(expectedRows);

        // each image equals the same image generated alone under its own interval, bit for bit
        for (int k = 0; k < 3; k++) {
            float[][] alone = generate(model(), new StaticIntervalPolicy(k + 1), new int[] {k}, ddim());
            assertThat(together[k]).as("image %d", k).containsExactly(alone[0]);
        }
    }

    @Test
    void forecastsWithDifferentCoefficientsPerImageMatchTheImagesAlone() {
        // TaylorSeer with N = 2, 3, 4: at a cached step each image extrapolates from its own last two computes
        CachePolicy policy = byCreationOrder(k -> new TaylorSeerPolicy(k + 2), 2);
        RecordingDiT model = model();
        float[][] together = generate(model, policy, new int[] {5, 6, 7}, ddim());
        for (int k = 0; k < 3; k++) {
            float[][] alone = generate(model(), new TaylorSeerPolicy(k + 2), new int[] {5 + k}, ddim());
            assertThat(together[k]).as("image %d", k).containsExactly(alone[0]);
        }
    }

    @ParameterizedTest(name = "batch of {0}")
    @ValueSource(ints = {1, 3, 5})
    void anImageIsTheSameAtAnyPositionInAnyBatch(int size) {
        DdpmSampler ddpm = new DdpmSampler(DiffusionSchedule.linear(1000).respace(STEPS));
        for (CachePolicy policy : List.of(new StaticIntervalPolicy(3), firstBlockRule(0.6))) {
            // image 4 at the last position of the batch, and alone
            int[] ids = new int[size];
            for (int i = 0; i < size; i++) {
                ids[i] = (4 + size - 1 - i) % 7;
            }
            float[][] batch = generate(model(), policy, ids, ddpm);
            float[][] alone = generate(model(), policy, new int[] {4}, ddpm);
            assertThat(batch[size - 1]).as("%s, batch %s", policy, java.util.Arrays.toString(ids)).containsExactly(alone[0]);
        }
    }

    @Test
    void theAdaptiveTestRuleReallyDecidesPerImage() {
        RecordingDiT model = model();
        CachePolicy policy = firstBlockRule(0.6);
        int[] ids = {0, 1, 2, 3};
        try (Generation<ArrayTensor> g = Generation.builder(model, policy).steps(STEPS).images(4).guided(true).open()) {
            ArrayOps ops = model.ops();
            List<NoiseSource> noise = new ArrayList<>();
            for (int id : ids) {
                noise.add(new SeededGaussianNoise(100 + id));
            }
            ddim().sample(ops, new ClassifierFreeGuidance<>(ops, g, CFG, model.unconditional()), new long[] {4, 4, 8, 8},
                    ClassLabels.of(0, 1, 2, 3), new PerImageNoise(noise)).close();
            GenerationStats stats = g.stats();
            double[] fractions = new double[4];
            for (int k = 0; k < 4; k++) {
                fractions[k] = stats.computeFraction(k);
            }
            assertThat(fractions).as("per-image compute fractions").doesNotContain(1.0);
            assertThat(java.util.Arrays.stream(fractions).distinct().count()).as("images decide differently").isGreaterThan(1);
            assertThat(stats.computeFraction()).isEqualTo(java.util.Arrays.stream(fractions).average().orElseThrow());
            assertThat(stats.fullSteps()).isLessThan(STEPS);
            // some step computed blocks >= 1 for a strict subset of the images: a real sub-batch
            assertThat(model.branchCalls).anySatisfy(c -> assertThat(c.rows()).isBetween(2, 6));
        }
    }

    @Test
    void harnessReportsBatchInvarianceForFixedAndAdaptivePolicies() {
        PolicyHarness harness = PolicyHarness.builder().steps(20).batch(4).build();
        assertThat(harness.batchInvarianceError(new StaticIntervalPolicy(3))).isZero();
        assertThat(harness.batchInvarianceError(firstBlockRule(0.8))).isZero();
        assertThat(harness.batchInvarianceError(new TaylorSeerPolicy(4))).isZero();
    }

    @Test
    void guidanceHalvesDecideTogetherByDefaultAndSeparatelyWhenThePolicyAsks() {
        AtomicInteger deciders = new AtomicInteger();
        CachePolicy together = info -> {
            deciders.incrementAndGet();
            assertThat(info.rowsPerDecider()).isEqualTo(2);
            return ctx -> Decision.COMPUTE;
        };
        generate(model(), together, new int[] {0, 1, 2}, ddim());
        assertThat(deciders).hasValue(3);

        // separate halves: the unconditional half (deciders 3..5, created after the conditional ones) reuses
        // whenever it can, the conditional half always computes
        AtomicInteger created = new AtomicInteger();
        CachePolicy separate = new CachePolicy() {
            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                assertThat(info.rowsPerDecider()).isEqualTo(1);
                boolean unconditional = created.getAndIncrement() >= info.images();
                return ctx -> !unconditional || ctx.step().step() == 0 ? Decision.COMPUTE : Decision.REUSE;
            }

            @Override
            public boolean separateGuidanceHalves() {
                return true;
            }
        };
        RecordingDiT model = model();
        generate(model, separate, new int[] {0, 1, 2}, ddim());
        assertThat(created).hasValue(6);
        int features = model.config().features();
        assertThat(model.branchCalls.subList(0, features)).allSatisfy(c -> assertThat(c.rows()).isEqualTo(6));
        assertThat(model.branchCalls.subList(features, model.branchCalls.size()))
                .allSatisfy(c -> assertThat(c.rows()).isEqualTo(3));
        assertThat(model.branchCalls).hasSize(STEPS * features);
    }
}
