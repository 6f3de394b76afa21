package dev.fora.core.cache;

import dev.fora.core.engine.Generation;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.model.Conditioning;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.FusedSteps;
import dev.fora.core.model.Modulation;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.DdpmSampler;
import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.PerImageNoise;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.tensor.Overwrite;
import dev.fora.core.tensor.TensorScope;
import dev.fora.core.testing.SyntheticDiT;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Uniform steps as one fused call: equal to the stages, and only when every image decides alike. */
class FusedStepsTest {

    private static final int K = 12;

    /** The synthetic model with fused steps built from its own stages, counting the fused calls. */
    static final class FusedDiT extends RecordingDiT {
        int full;
        int cached;
        int split;
        int masked;
        int heads;
        int tails;
        /** Split calls that carried tails (also counted in {@link #split}). */
        int carried;
        /** The stacks offered to full steps to write into, and the stacks full steps returned, in order. */
        final List<ArrayTensor> offered = new ArrayList<>();
        final List<ArrayTensor> returned = new ArrayList<>();
        private final boolean splits;
        private final boolean masks;
        private final boolean spans;

        FusedDiT() {
            this(false);
        }

        /** @param splits whether the model has the split call (full and cached rows in one call) */
        FusedDiT(boolean splits) {
            this(splits, false);
        }

        /**
         * @param splits whether the model has the split call (full and cached rows in one call)
         * @param masks whether it has the masked call (some features computed, the others cached)
         */
        FusedDiT(boolean splits, boolean masks) {
            this(splits, masks, false);
        }

        /** @param spans whether it also has the head and tail calls (the first blocks, then the rest) */
        FusedDiT(boolean splits, boolean masks, boolean spans) {
            super(new SyntheticDiT(new ArrayOps(), 3));
            this.splits = splits;
            this.masks = masks;
            this.spans = spans;
        }

        /** The fused calls so far, a split or masked call counting as one. */
        int calls() {
            return full + cached + split + masked;
        }

        @Override
        public Optional<FusedSteps<ArrayTensor>> fusedSteps() {
            return Optional.of(new FusedSteps<>() {
                @Override
                public Full<ArrayTensor> full(ArrayTensor x, float[] t, Conditioning c) {
                    full++;
                    Full<ArrayTensor> step = run(x, t, c, null);
                    returned.add(step.features());
                    return step;
                }

                @Override
                public Full<ArrayTensor> full(ArrayTensor x, float[] t, Conditioning c, ArrayTensor into) {
                    offered.add(into);
                    full++;
                    Full<ArrayTensor> step = run(x, t, c, null);
                    if (!java.util.Arrays.equals(into.shape(), step.features().shape())) { // as a real model: a new stack
                        into.close();
                        returned.add(step.features());
                        return step;
                    }
                    try (ArrayTensor features = step.features()) {
                        Overwrite.copy(features, into);
                    }
                    returned.add(into);
                    return new Full<>(step.output(), into);
                }

                @Override
                public ArrayTensor cached(ArrayTensor x, float[] t, Conditioning c, List<ArrayTensor> slots,
                        double[] coefficients) {
                    cached++;
                    ArrayOps ops = ops();
                    try (ArrayTensor features = ops.linearCombination(coefficients, slots)) {
                        return run(x, t, c, ops.unstack(features)).output();
                    }
                }

                @Override
                public boolean splits() {
                    return splits;
                }

                @Override
                public Full<ArrayTensor> split(ArrayTensor x, float[] t, Conditioning c, int fullRows, List<ArrayTensor> slots,
                        double[] coefficients) {
                    split++;
                    ArrayOps ops = ops();
                    int n = c.size();
                    TensorScope outer = ops.currentScope();
                    try (TensorScope scope = ops.openScope();
                            ArrayTensor features = ops.linearCombination(coefficients, slots)) {
                        Full<ArrayTensor> first = run(ops.sliceBatch(x, 0, fullRows), java.util.Arrays.copyOfRange(t, 0, fullRows),
                                c.rows(java.util.stream.IntStream.range(0, fullRows).toArray()), null);
                        Full<ArrayTensor> rest = run(ops.sliceBatch(x, fullRows, n), java.util.Arrays.copyOfRange(t, fullRows, n),
                                c.rows(java.util.stream.IntStream.range(fullRows, n).toArray()), ops.unstack(features));
                        return new Full<>(ops.attach(ops.concatBatch(List.of(first.output(), rest.output())), outer),
                                ops.attach(first.features(), outer));
                    }
                }

                @Override
                public boolean masks() {
                    return masks;
                }

                /** As the stages combine: a reused value as it is, a forecast as one linear combination. */
                @Override
                public Full<ArrayTensor> masked(ArrayTensor x, float[] t, Conditioning c, int[] terms, List<ArrayTensor> values,
                        double[] coefficients) {
                    masked++;
                    ArrayOps ops = ops();
                    TensorScope outer = ops.currentScope();
                    try (TensorScope scope = ops.openScope()) {
                        List<ArrayTensor> given = new ArrayList<>();
                        int at = 0;
                        for (int n : terms) {
                            boolean reuse = n == 1 && coefficients[at] == 1.0;
                            given.add(n == 0 ? null : reuse ? values.get(at) : ops.linearCombination(
                                    java.util.Arrays.copyOfRange(coefficients, at, at + n), values.subList(at, at + n)));
                            at += n;
                        }
                        Full<ArrayTensor> step = run(x, t, c, given);
                        ArrayTensor features;
                        if (step.features() == null) { // nothing computed: an empty stack, as a real model's
                            long[] value = values.get(0).shape();
                            features = ops.fromFloats(new long[] {0, value[0], value[1], value[2]}, new float[0]);
                        } else {
                            List<ArrayTensor> computed = new ArrayList<>();
                            List<ArrayTensor> all = ops.unstack(step.features());
                            for (int f = 0; f < terms.length; f++) {
                                if (terms[f] == 0) {
                                    computed.add(all.get(f));
                                }
                            }
                            features = ops.stack(computed);
                        }
                        return new Full<>(ops.attach(step.output(), outer), ops.attach(features, outer));
                    }
                }

                @Override
                public boolean spans() {
                    return spans;
                }

                /** A model that splits and spans carries tails too. */
                @Override
                public boolean carriesTails() {
                    return splits && spans;
                }

                /** The split step's rows as {@code split}, {@code full} or {@code cached} computes them, the tails as {@code tail}. */
                @Override
                public SplitWithTails<ArrayTensor> splitWithTails(ArrayTensor x, float[] t, Conditioning c, int fullRows,
                        List<ArrayTensor> slots, double[] coefficients, Tails<ArrayTensor> riding) {
                    carried++;
                    ArrayOps ops = ops();
                    int n = c.size();
                    TensorScope outer = ops.currentScope();
                    try (TensorScope scope = ops.openScope()) {
                        Full<ArrayTensor> step;
                        if (fullRows == n) {
                            step = run(x, t, c, null);
                        } else if (fullRows == 0) {
                            try (ArrayTensor features = ops.linearCombination(coefficients, slots)) {
                                ArrayTensor none = ops.fromFloats(new long[] {config().features(), 0, config().tokens(),
                                    config().hiddenSize()}, new float[0]);
                                step = new Full<>(run(x, t, c, ops.unstack(features)).output(), none);
                            }
                        } else {
                            step = split(x, t, c, fullRows, slots, coefficients);
                            split--;
                        }
                        split++;
                        int m = (int) riding.tokens().shape()[0];
                        int k = riding.computing();
                        List<ArrayTensor> outputs = new ArrayList<>();
                        ArrayTensor ended = null;
                        if (k > 0) {
                            Tail<ArrayTensor> computed = tail(ops.sliceBatch(riding.tokens(), 0, k),
                                    ops.sliceBatch(riding.conditioning(), 0, k), 1);
                            tails--;
                            outputs.add(computed.output());
                            ended = computed.tokens();
                        }
                        if (k < m) {
                            outputs.add(tail(ops.sliceBatch(riding.tokens(), k, m), ops.sliceBatch(riding.conditioning(), k, m),
                                    config().depth()).output());
                            tails--;
                        }
                        ArrayTensor tailOutput = outputs.size() == 1 ? outputs.get(0) : ops.concatBatch(outputs);
                        return new SplitWithTails<>(ops.attach(step.output(), outer), ops.attach(step.features(), outer),
                                ops.attach(tailOutput, outer), ended == null ? null : ops.attach(ended, outer));
                    }
                }

                /** The stages of blocks [0, blocks). */
                @Override
                public Head<ArrayTensor> head(ArrayTensor x, float[] t, Conditioning c, int blocks) {
                    heads++;
                    ArrayOps ops = ops();
                    TensorScope outer = ops.currentScope();
                    try (TensorScope scope = ops.openScope()) {
                        Embedding<ArrayTensor> e = delegate().embed(x, t, c);
                        ArrayTensor h = blocks(e, e.tokens(), 0, blocks);
                        return new Head<>(ops.attach(h, outer), ops.attach(ops.sub(h, e.tokens()), outer),
                                ops.attach(e.conditioning(), outer));
                    }
                }

                /** The stages of blocks [from, depth) and the final layer. */
                @Override
                public Tail<ArrayTensor> tail(ArrayTensor tokens, ArrayTensor conditioning, int from) {
                    tails++;
                    ArrayOps ops = ops();
                    TensorScope outer = ops.currentScope();
                    try (TensorScope scope = ops.openScope()) {
                        Embedding<ArrayTensor> e = new Embedding<>(null, conditioning, null, null);
                        ArrayTensor h = blocks(e, tokens, from, config().depth());
                        return new Tail<>(ops.attach(delegate().finalLayer(h, e), outer), ops.attach(h, outer));
                    }
                }
            });
        }

        /** Blocks [from, to) of the stages over {@code h}, in the current scope. */
        private ArrayTensor blocks(Embedding<ArrayTensor> e, ArrayTensor h, int from, int to) {
            List<Modulation<ArrayTensor>> mods = delegate().modulations(e);
            for (int b = from; b < to; b++) {
                for (int i = 0; i < config().branches(); i++) {
                    h = delegate().addBranch(i, h, mods.get(b), delegate().branch(b, i, h, mods.get(b), e));
                }
            }
            return h;
        }

        /**
         * The stages in order; each branch output from {@code given} where it has one (not null),
         * else computed. The features are every branch output, stacked, when any was computed.
         */
        private FusedSteps.Full<ArrayTensor> run(ArrayTensor x, float[] t, Conditioning c, List<ArrayTensor> given) {
            ArrayOps ops = ops();
            TensorScope outer = ops.currentScope();
            try (TensorScope scope = ops.openScope()) {
                Embedding<ArrayTensor> e = delegate().embed(x, t, c);
                List<Modulation<ArrayTensor>> mods = delegate().modulations(e);
                List<ArrayTensor> features = new ArrayList<>();
                ArrayTensor h = e.tokens();
                for (int b = 0; b < config().depth(); b++) {
                    for (int i = 0; i < config().branches(); i++) {
                        ArrayTensor f = given != null && given.get(config().feature(b, i)) != null
                                ? given.get(config().feature(b, i)) : delegate().branch(b, i, h, mods.get(b), e);
                        features.add(f);
                        h = delegate().addBranch(i, h, mods.get(b), f);
                    }
                }
                ArrayTensor out = ops.attach(delegate().finalLayer(h, e), outer);
                boolean computed = given == null || given.contains(null);
                return new FusedSteps.Full<>(out, computed ? ops.attach(ops.stack(features), outer) : null);
            }
        }
    }

    private static float[] sample(RecordingDiT model, CachePolicy policy, boolean fused) {
        ArrayOps ops = model.ops();
        DiffusionSampler sampler = new DdpmSampler(DiffusionSchedule.linear(1000).respace(K));
        try (Generation<ArrayTensor> g = Generation.builder(model, policy).steps(K).images(3).guided(true).fusedSteps(fused)
                .open();
                ArrayTensor out = sampler.sample(ops, new ClassifierFreeGuidance<>(ops, g, 1.5, model.unconditional()),
                        new long[] {3, 4, 8, 8}, ClassLabels.of(1, 4, 7), PerImageNoise.seeded(9, 3))) {
            return ops.toFloats(out);
        } finally {
            assertThat(ops.liveTensors()).isZero();
        }
    }

    @Test
    void uniformStepsRunFusedAndEqualTheStagesBitForBit() {
        for (CachePolicy policy : List.of(NoCache.INSTANCE, new StaticIntervalPolicy(3), new TaylorSeerPolicy(3),
                WarmupCooldown.warmup(2, new TaylorSeerPolicy(4)))) {
            FusedDiT fused = new FusedDiT();
            float[] a = sample(fused, policy, true);
            FusedDiT staged = new FusedDiT();
            float[] b = sample(staged, policy, false);
            assertThat(a).as(policy.toString()).containsExactly(b);
            assertThat(fused.full + fused.cached).as(policy.toString()).isEqualTo(K);
            assertThat(fused.branchCalls).as(policy.toString()).isEmpty();
            assertThat(staged.full + staged.cached).isZero();
        }
    }

    @Test
    void aFirstBlockCacheStepTakesAHeadCallAndATailCallPerKindOfImageAndEqualsTheStagesBitForBit() {
        for (String spec : List.of("fbcache:0", "fbcache:1", "fbcache:2")) {
            CachePolicy policy = CachePolicies.parse(spec);
            FusedDiT spanned = new FusedDiT(false, false, true);
            float[] a = sample(spanned, policy, true);
            FusedDiT staged = new FusedDiT(false, false, true);
            float[] b = sample(staged, policy, false);
            assertThat(a).as(spec).containsExactly(b);
            assertThat(staged.branchCalls).as(spec).isNotEmpty();
            assertThat(staged.heads + staged.tails).as(spec).isZero();
            assertThat(spanned.branchCalls).as(spec).isEmpty();
            assertThat(spanned.heads).as(spec).isEqualTo(K);
            // a tail for the images that compute the other blocks and one for those that skip them
            if (spec.equals("fbcache:0")) {
                assertThat(spanned.tails).as(spec).isEqualTo(K);
            } else {
                assertThat(spanned.tails).as(spec + ": some steps have both kinds").isBetween(K + 1, 2 * K);
            }
        }
    }

    @Test
    void aFullStepWritesIntoTheStackItReplacesWhenNothingReadsItAnyMore() {
        // FORA keeps one stack: each full step after the first is offered the one before it
        FusedDiT fora = new FusedDiT();
        assertThat(sample(fora, new StaticIntervalPolicy(3), true))
                .containsExactly(sample(new FusedDiT(), new StaticIntervalPolicy(3), false));
        assertThat(fora.full).isEqualTo(5);
        assertThat(fora.offered).containsExactlyElementsOf(fora.returned.subList(0, 4));

        // TaylorSeer of order 2 keeps three stacks: from the fourth full step on, the oldest is offered
        FusedDiT taylor = new FusedDiT();
        assertThat(sample(taylor, new TaylorSeerPolicy(2, 2), true))
                .containsExactly(sample(new FusedDiT(), new TaylorSeerPolicy(2, 2), false));
        assertThat(taylor.full).isEqualTo(7);
        assertThat(taylor.offered).containsExactlyElementsOf(taylor.returned.subList(0, 4));

        // a staged step that replaced one feature drops the stack (its other views are still read): the next full step gets none
        CachePolicy thenReuse = info -> ctx -> ctx.step().step() % 4 == 0 || (ctx.step().step() == 1 && ctx.block() == 0)
                ? Decision.COMPUTE : Decision.REUSE;
        FusedDiT restaged = new FusedDiT();
        assertThat(sample(restaged, thenReuse, true)).containsExactly(sample(new FusedDiT(), thenReuse, false));
        assertThat(restaged.full).isEqualTo(3);
        assertThat(restaged.offered).containsExactly(restaged.returned.get(1));
    }

    @Test
    void mixedStepsAndMeasuringPoliciesRunTheStages() {
        // the first half of the blocks computes every step, the rest every third step
        CachePolicy perBlock = info -> ctx -> ctx.step().step() % 3 == 0 || ctx.block() < 3 ? Decision.COMPUTE
                : Decision.REUSE;
        FusedDiT fused = new FusedDiT();
        float[] a = sample(fused, perBlock, true);
        assertThat(a).containsExactly(sample(new FusedDiT(), perBlock, false));
        assertThat(fused.full).isEqualTo(4);
        assertThat(fused.cached).isZero();
        assertThat(fused.branchCalls).hasSize((K - 4) * 3 * 2);

        // after a staged step changed single features, a reuse step stacks the cached values anew
        CachePolicy thenReuse = info -> ctx -> ctx.step().step() == 0 || (ctx.step().step() == 1 && ctx.block() == 0)
                ? Decision.COMPUTE : Decision.REUSE;
        FusedDiT restack = new FusedDiT();
        assertThat(sample(restack, thenReuse, true)).containsExactly(sample(new FusedDiT(), thenReuse, false));
        assertThat(restack.full).isEqualTo(1);
        assertThat(restack.cached).isEqualTo(K - 2);

        FusedDiT measuring = new FusedDiT();
        sample(measuring, PerImageDecisionsTest.firstBlockRule(0.6), true);
        assertThat(measuring.full + measuring.cached).isZero();
    }

    @Test
    void mixedStepsAlikeForEveryImageRunOneMaskedCall() {
        // the first half of the blocks computes every step, the rest every third step: 4 full steps, 8 mixed ones
        CachePolicy perBlock = info -> ctx -> ctx.step().step() % 3 == 0 || ctx.block() < 3 ? Decision.COMPUTE
                : Decision.REUSE;
        FusedDiT reuse = new FusedDiT(false, true);
        assertThat(sample(reuse, perBlock, true)).containsExactly(sample(new FusedDiT(), perBlock, false));
        assertThat(reuse.full).isEqualTo(4);
        assertThat(reuse.masked).isEqualTo(K - 4);
        assertThat(reuse.branchCalls).isEmpty();

        // a per-block schedule forecasting with TaylorSeer: each feature over its own gaps, its own coefficients
        // (blocks 3..5 compute every step)
        int[][][] steps = new int[6][2][];
        for (int b = 0; b < 6; b++) {
            int every = b < 3 ? b + 2 : 1;
            steps[b][0] = java.util.stream.IntStream.range(0, K).filter(s -> s % every == 0 || s == 1).toArray();
            steps[b][1] = java.util.stream.IntStream.range(0, K).filter(s -> every == 1 || s % 3 == 0 || s == 1 || s == 2)
                    .toArray();
        }
        CachePolicy schedule = new SchedulePolicy(new CacheSchedule(new CacheSchedule.Target("any", "ddpm", K),
                List.of("attn", "mlp"), steps, CacheSchedule.Forecast.taylorSeer(2), false));
        FusedDiT forecast = new FusedDiT(false, true);
        assertThat(sample(forecast, schedule, true)).containsExactly(sample(new FusedDiT(), schedule, false));
        assertThat(forecast.masked).isPositive();
        assertThat(forecast.branchCalls).isEmpty();

        // images that decide differently still run the stages
        java.util.concurrent.atomic.AtomicInteger deciders = new java.util.concurrent.atomic.AtomicInteger();
        CachePolicy perImage = info -> {
            int every = 2 + deciders.getAndIncrement() % 3; // one decider per image, 3 images per generation
            return ctx -> ctx.step().step() % every == 0 || ctx.block() == 0 ? Decision.COMPUTE : Decision.REUSE;
        };
        FusedDiT staged = new FusedDiT(false, true);
        assertThat(sample(staged, perImage, true)).containsExactly(sample(new FusedDiT(), perImage, false));
        assertThat(staged.branchCalls).isNotEmpty();
    }
}
