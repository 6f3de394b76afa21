package dev.fora.djl;

import static dev.fora.djl.Goldens.maxAbsDiff;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.FusedSteps;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Uniform steps as one TorchScript call each: the same images as the staged path, with far fewer calls. */
class FusedStepsTest {

    private static final int K = 20;

    @TempDir
    Path tmp;

    private static GenerationRequest.Builder request(String policy, String sampler) {
        return GenerationRequest.builder(2, 7, 4).steps(K).sampler(sampler).policy(policy).seed(5);
    }

    @Test
    void fusedStepsEqualTheStagedPath() throws Exception {
        DiTPipeline p = TestModels.pipeline();
        assertThat(p.manifest().hasFusedSteps()).isTrue();
        int before = p.manager().getManagedArrays().size();
        for (String policy : new String[] {"none", "fora:3", "taylorseer:3", "warmup:2,fora:4"}) {
            for (String sampler : new String[] {"ddim", "ddpm"}) {
                GeneratedImages fused = p.generate(request(policy, sampler).build());
                GeneratedImages staged = p.generate(request(policy, sampler).fusedSteps(false).build());
                double d = maxAbsDiff(fused.data(), staged.data());
                System.out.printf("fused vs staged, %s %s: max abs diff %.3g, %s%n", sampler, policy, d, fused.calls());
                assertThat(d).as("%s %s", sampler, policy).isLessThanOrEqualTo(1e-5);
                assertThat(fused.stats().computeFraction()).isEqualTo(staged.stats().computeFraction());
                assertThat(fused.stats().peakCacheBytes()).isEqualTo(staged.stats().peakCacheBytes());
                // every step was uniform: one call per step, no stage calls; a policy that keeps nothing
                // runs the plain forward, which gathers no features
                boolean keepsNothing = policy.equals("none");
                long fullCalls = keepsNothing ? fused.calls().forward() : fused.calls().fullSteps();
                assertThat(fullCalls + fused.calls().cachedSteps()).isEqualTo(K);
                assertThat(fused.calls().totalBranchCalls()).isZero();
                assertThat(fullCalls).isEqualTo(fused.stats().fullSteps());
                assertThat(keepsNothing ? fused.calls().fullSteps() : fused.calls().forward()).isZero();
                assertThat(staged.calls().fullSteps() + staged.calls().cachedSteps()).isZero();
            }
        }
        assertThat(p.manager().getManagedArrays()).hasSize(before);
    }

    @Test
    void aMixedStepAlikeForEveryImageIsOneMaskedCall() throws Exception {
        DiTPipeline p = TestModels.pipeline();
        int before = p.manager().getManagedArrays().size();
        // per block: the first half computes every step, the second half every other step, reusing or forecasting
        for (boolean forecast : new boolean[] {false, true}) {
            dev.fora.core.cache.CachePolicy policy = new HalfTheBlocks(forecast);
            GeneratedImages fused = p.generate(request("none", "ddim").policy(policy).build());
            GeneratedImages staged = p.generate(request("none", "ddim").policy(policy).fusedSteps(false).build());
            double d = maxAbsDiff(fused.data(), staged.data());
            System.out.printf("masked vs staged, forecast %s: max abs diff %.3g, %s%n", forecast, d, fused.calls());
            assertThat(d).isLessThanOrEqualTo(1e-5);
            assertThat(fused.stats().computeFraction()).isEqualTo(staged.stats().computeFraction());
            // even steps and step 1 are full, the other odd ones mixed: one masked call each, no stage calls
            assertThat(fused.calls().fullSteps()).isEqualTo(K / 2 + 1);
            assertThat(fused.calls().maskedSteps()).isEqualTo(K / 2 - 1);
            assertThat(fused.calls().totalBranchCalls()).isZero();
            assertThat(staged.calls().maskedSteps()).isZero();
        }
        assertThat(p.manager().getManagedArrays()).hasSize(before);

        // images that decide differently run the stages
        java.util.concurrent.atomic.AtomicInteger deciders = new java.util.concurrent.atomic.AtomicInteger();
        dev.fora.core.cache.CachePolicy perImage = info -> {
            int every = 2 + deciders.getAndIncrement() % 3; // one decider per image, 3 images per generation
            return ctx -> ctx.step().step() % every == 0 || ctx.block() == 0 ? dev.fora.core.cache.Decision.COMPUTE
                    : dev.fora.core.cache.Decision.REUSE;
        };
        GeneratedImages mixed = p.generate(request("none", "ddim").policy(perImage).build());
        GeneratedImages mixedStaged = p.generate(request("none", "ddim").policy(perImage).fusedSteps(false).build());
        assertThat(maxAbsDiff(mixed.data(), mixedStaged.data())).isLessThanOrEqualTo(1e-5);
        assertThat(mixed.calls().calls("attn")[1]).isPositive();
        // measuring policies decide as the pass goes, so they always run the stages
        GeneratedImages measured = p.generate(request("none", "ddim").policy(PerImageOnDjlTest.firstBlockRule(0.3)).build());
        assertThat(measured.calls().fullSteps() + measured.calls().cachedSteps() + measured.calls().maskedSteps()).isZero();
    }

    /**
     * The first half of the blocks computes every step, the second half on even steps and step 1;
     * between, each of its features is reused, or extrapolated linearly from its last two values.
     */
    private record HalfTheBlocks(boolean forecast) implements dev.fora.core.cache.CachePolicy {

        @Override
        public dev.fora.core.cache.CacheDecider newDecider(dev.fora.core.cache.GenerationInfo info) {
            return ctx -> {
                int s = ctx.step().step();
                if (s % 2 == 0 || s == 1 || ctx.block() < info.config().depth() / 2) {
                    return dev.fora.core.cache.Decision.COMPUTE;
                }
                if (!forecast) {
                    return dev.fora.core.cache.Decision.REUSE;
                }
                int[] at = ctx.computedSteps(); // most recent first
                double r = (double) (s - at[0]) / (at[0] - at[1]);
                return dev.fora.core.cache.Decision.forecast(1 + r, -r);
            };
        }

        @Override
        public int historyLength() {
            return forecast ? 2 : 1;
        }
    }

    /** A forecast is combined inside the cached call: the same as the call fed the combination. */
    @Test
    void aCachedCallCombinesItsSlots() throws Exception {
        try (TorchScriptDiT dit = TestModels.pipeline().newDiT()) {
            NDArrayOps ops = dit.ops();
            FusedSteps<NDTensor> fused = dit.fusedSteps().orElseThrow();
            Conditioning labels = ClassLabels.of(1, 4, 9);
            NDTensor x = latent(ops, 3, 3);
            float[] t = {500f, 500f, 500f};
            NDTensor a = fused.full(x, new float[] {520f, 520f, 520f}, labels).features();
            NDTensor b = fused.full(x, new float[] {540f, 540f, 540f}, labels).features();
            double[] c = {1.7, -0.7};
            float[] inCall = ops.toFloats(fused.cached(x, t, labels, List.of(a, b), c));
            float[] combined = ops.toFloats(fused.cached(x, t, labels, List.of(ops.linearCombination(c, List.of(a, b))),
                    new double[] {1.0}));
            assertThat(maxAbsDiff(inCall, combined)).isLessThanOrEqualTo(1e-5);
            assertThat(maxAbsDiff(inCall, ops.toFloats(fused.cached(x, t, labels, List.of(a), new double[] {1.0}))))
                    .as("the second slot is read").isGreaterThan(1e-4);
            assertThatThrownBy(() -> fused.cached(x, t, labels, List.of(a), c)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("1 feature slots for 2 coefficients");
            assertThatThrownBy(() -> fused.cached(x, t, labels, List.of(), new double[0]))
                    .isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> fused.cached(x, t, labels, List.of(x), new double[] {1.0}))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("stacked features");
            // a masked call checks its term counts and the shape of each cached value the same way
            int[] reuseAll = new int[12];
            java.util.Arrays.fill(reuseAll, 1);
            double[] ones = new double[12];
            java.util.Arrays.fill(ones, 1.0);
            assertThatThrownBy(() -> fused.masked(x, t, labels, reuseAll, java.util.Collections.nCopies(12, x), ones))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("cached values");
            assertThatThrownBy(() -> fused.masked(x, t, labels, new int[] {1}, ops.unstack(a), ones))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("a term count >= 0 for each of the 12");
        }
    }

    /** First-Block-Cache: a head call per step and a tail call per kind of image, the staged path's images. */
    @Test
    void aFirstBlockCacheStepIsAHeadCallAndATailCallPerKindOfImage() throws Exception {
        DiTPipeline p = TestModels.pipeline();
        int before = p.manager().getManagedArrays().size();
        for (String policy : new String[] {"fbcache:0", "fbcache:0.3"}) {
            GeneratedImages fused = p.generate(request(policy, "ddim").build());
            GeneratedImages staged = p.generate(request(policy, "ddim").fusedSteps(false).build());
            double d = maxAbsDiff(fused.data(), staged.data());
            System.out.printf("head and tail vs staged, %s: max abs diff %.3g, %s%n", policy, d, fused.calls());
            assertThat(d).as(policy).isLessThanOrEqualTo(1e-5);
            assertThat(fused.stats().decisionMap()).as(policy).isEqualTo(staged.stats().decisionMap());
            assertThat(fused.calls().headSteps()).as(policy).isEqualTo(K);
            assertThat(fused.calls().tailSteps()).as(policy).isBetween((long) K, 2L * K);
            assertThat(fused.calls().totalBranchCalls() + fused.calls().embed() + fused.calls().finalLayer()).isZero();
            assertThat(staged.calls().headSteps() + staged.calls().tailSteps()).isZero();
        }
        assertThat(p.generate(request("fbcache:0.3", "ddim").build()).stats().computeFraction()).as("some steps skip")
                .isLessThan(1.0);
        assertThat(p.manager().getManagedArrays()).hasSize(before);
        try (TorchScriptDiT dit = p.newDiT()) {
            NDArrayOps ops = dit.ops();
            FusedSteps<NDTensor> fused = dit.fusedSteps().orElseThrow();
            assertThat(fused.spans()).isTrue();
            NDTensor x = latent(ops, 8, 3);
            float[] t = {900f, 400f, 30f};
            Conditioning labels = ClassLabels.of(1, 10, 4);
            float[] whole = ops.toFloats(dit.wholeModel(x, t, labels));
            for (int blocks : new int[] {0, 1, 6}) {
                FusedSteps.Head<NDTensor> head = fused.head(x, t, labels, blocks);
                FusedSteps.Tail<NDTensor> tail = fused.tail(head.tokens(), head.conditioning(), blocks);
                assertThat(maxAbsDiff(ops.toFloats(tail.output()), whole)).as("head of %d blocks", blocks)
                        .isLessThanOrEqualTo(1e-5);
            }
            assertThat(dit.calls().headSteps()).isEqualTo(3);
            assertThat(dit.calls().tailSteps()).isEqualTo(3);
            FusedSteps.Head<NDTensor> head = fused.head(x, t, labels, 1);
            assertThatThrownBy(() -> fused.head(x, t, labels, 7)).isInstanceOf(IndexOutOfBoundsException.class)
                    .hasMessageContaining("blocks 7 outside 0..6");
            assertThatThrownBy(() -> fused.tail(head.tokens(), head.conditioning(), -1))
                    .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("from -1 outside 0..6");
            assertThatThrownBy(() -> fused.tail(head.tokens(), ops.sliceBatch(head.conditioning(), 0, 2), 1))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("2 conditioning rows for 3 rows");
            assertThatThrownBy(() -> fused.tail(x, head.conditioning(), 1)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("tokens shape");
        }
    }

    /** A split call equals a full call on its first rows and a cached call on the rest. */
    @Test
    void aSplitCallIsAFullStepAndACachedStepInOne() throws Exception {
        try (TorchScriptDiT dit = TestModels.pipeline().newDiT()) {
            NDArrayOps ops = dit.ops();
            FusedSteps<NDTensor> fused = dit.fusedSteps().orElseThrow();
            assertThat(fused.splits()).isTrue();
            NDTensor x = latent(ops, 4, 5);
            float[] t = {900f, 900f, 400f, 400f, 30f};
            Conditioning labels = ClassLabels.of(1, 10, 4, 10, 9);
            NDTensor first = ops.sliceBatch(x, 0, 2);
            NDTensor rest = ops.sliceBatch(x, 2, 5);
            Conditioning restLabels = ClassLabels.of(4, 10, 9);
            float[] restT = {400f, 400f, 30f};
            NDTensor a = fused.full(rest, new float[] {420f, 420f, 50f}, restLabels).features();
            NDTensor b = fused.full(rest, new float[] {440f, 440f, 70f}, restLabels).features();
            double[] c = {1.7, -0.7};
            FusedSteps.Full<NDTensor> full = fused.full(first, new float[] {900f, 900f}, ClassLabels.of(1, 10));
            NDTensor cached = fused.cached(rest, restT, restLabels, List.of(a, b), c);
            FusedSteps.Full<NDTensor> split = fused.split(x, t, labels, 2, List.of(a, b), c);
            float[] out = ops.toFloats(split.output());
            float[] want = ops.toFloats(ops.concatBatch(List.of(full.output(), cached)));
            assertThat(maxAbsDiff(out, want)).isLessThanOrEqualTo(1e-5);
            assertThat(maxAbsDiff(ops.toFloats(split.features()), ops.toFloats(full.features()))).isLessThanOrEqualTo(1e-5);
            assertThat(split.features().shape()).containsExactly(12, 2, 16, 128);
            assertThat(dit.calls().splitSteps()).isEqualTo(1);
            assertThatThrownBy(() -> fused.split(x, t, labels, 3, List.of(a), new double[] {1.0}))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("stacked features");
            assertThatThrownBy(() -> fused.split(x, t, labels, 6, List.of(a), new double[] {1.0}))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("6 full rows of 5");

            // other images' tails riding along: two run blocks 1.., one is past every block
            assertThat(fused.carriesTails()).isTrue();
            FusedSteps.Head<NDTensor> head = fused.head(ops.sliceBatch(x, 0, 3), new float[] {700f, 700f, 200f},
                    ClassLabels.of(3, 10, 5), 1);
            NDTensor tokens = head.tokens();
            NDTensor conditioning = head.conditioning();
            FusedSteps.SplitWithTails<NDTensor> riding = fused.splitWithTails(x, t, labels, 2, List.of(a, b), c,
                    new FusedSteps.Tails<>(tokens, conditioning, 2));
            assertThat(maxAbsDiff(ops.toFloats(riding.output()), out)).isLessThanOrEqualTo(1e-5);
            // products over more rows round differently (MKL blocks by rows): compared relative to the features' size
            // (branch outputs before their gates, up to ~18 here; the split call alone was within 1e-5 absolute)
            float[] fullFeatures = ops.toFloats(full.features());
            double largest = 0;
            for (float v : fullFeatures) {
                largest = Math.max(largest, Math.abs(v));
            }
            System.out.printf("riding features vs full: max abs diff %.3g of values up to %.3g%n",
                    maxAbsDiff(ops.toFloats(riding.features()), fullFeatures), largest);
            assertThat(maxAbsDiff(ops.toFloats(riding.features()), fullFeatures)).isLessThanOrEqualTo(2e-6 * largest);
            FusedSteps.Tail<NDTensor> computed = fused.tail(ops.sliceBatch(tokens, 0, 2), ops.sliceBatch(conditioning, 0, 2), 1);
            NDTensor ended = fused.tail(ops.sliceBatch(tokens, 2, 3), ops.sliceBatch(conditioning, 2, 3), 6).output();
            assertThat(maxAbsDiff(ops.toFloats(riding.tailOutput()), ops.toFloats(ops.concatBatch(List.of(computed.output(),
                    ended))))).isLessThanOrEqualTo(1e-5);
            assertThat(maxAbsDiff(ops.toFloats(riding.tailTokens()), ops.toFloats(computed.tokens()))).isLessThanOrEqualTo(1e-5);
            assertThatThrownBy(() -> fused.splitWithTails(x, t, labels, 2, List.of(a, b), c,
                    new FusedSteps.Tails<>(tokens, conditioning, 4))).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("4 computing rows");
        }
    }

    /** A full step given a stack to write into fills that stack, with what a new one would hold; a stack of another shape is closed. */
    @Test
    void aFullStepWritesIntoTheStackItIsGiven() throws Exception {
        try (TorchScriptDiT dit = TestModels.pipeline().newDiT()) {
            NDArrayOps ops = dit.ops();
            FusedSteps<NDTensor> fused = dit.fusedSteps().orElseThrow();
            NDTensor x = latent(ops, 6, 2);
            float[] t = {700f, 700f};
            Conditioning labels = ClassLabels.of(2, 10);
            FusedSteps.Full<NDTensor> fresh = fused.full(x, t, labels);
            NDTensor into = fused.full(x, new float[] {100f, 100f}, labels).features();
            FusedSteps.Full<NDTensor> written = fused.full(x, t, labels, into);
            assertThat(written.features()).isSameAs(into);
            assertThat(ops.toFloats(written.features())).containsExactly(ops.toFloats(fresh.features()));
            assertThat(ops.toFloats(written.output())).containsExactly(ops.toFloats(fresh.output()));
            assertThat(dit.calls().fullSteps()).isEqualTo(3);

            NDTensor other = ops.sliceBatch(fresh.features(), 0, 1); // [features, 1, T, D] for 2 rows
            FusedSteps.Full<NDTensor> fallback = fused.full(x, t, labels, other);
            assertThat(other.isReleased()).isTrue();
            assertThat(ops.toFloats(fallback.features())).containsExactly(ops.toFloats(fresh.features()));
        }
    }

    /** Format 1 has no fused methods, format 2 an older forward_cached: both run the stages. */
    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void anOlderFormatModelDirectoryLoadsAndRunsTheStages(int version) throws Exception {
        Path dir = Files.createDirectory(tmp.resolve("v" + version));
        try (Stream<Path> files = Files.list(TestModels.modelDir())) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        Path manifest = dir.resolve(ModelManifest.FILE_NAME);
        JsonObject j = JsonParser.parseString(Files.readString(manifest)).getAsJsonObject();
        j.addProperty("format_version", version);
        Files.writeString(manifest, j.toString());
        try (DiTPipeline old = DiTPipeline.load(dir)) {
            assertThat(old.manifest().hasFusedSteps()).isFalse();
            GeneratedImages g = old.generate(request("fora:3", "ddim").build());
            GeneratedImages fused = TestModels.pipeline().generate(request("fora:3", "ddim").build());
            assertThat(g.calls().fullSteps() + g.calls().cachedSteps()).isZero();
            assertThat(g.calls().totalBranchCalls()).isPositive();
            assertThat(maxAbsDiff(g.data(), fused.data())).isLessThanOrEqualTo(1e-5);
        }
    }

    /** {@code n} latents of the shipped model ([n, 3, 16, 16]) of seeded Gaussian noise. */
    private static NDTensor latent(NDArrayOps ops, long seed, int n) {
        java.util.Random random = new java.util.Random(seed);
        float[] noise = new float[n * 3 * 16 * 16];
        for (int i = 0; i < noise.length; i++) {
            noise[i] = (float) random.nextGaussian();
        }
        return ops.fromFloats(new long[] {n, 3, 16, 16}, noise);
    }
}
