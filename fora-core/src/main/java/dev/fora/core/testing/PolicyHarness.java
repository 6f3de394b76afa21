package dev.fora.core.testing;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.engine.Generation;
import dev.fora.core.engine.GenerationStats;
import dev.fora.core.cache.NoCache;
import dev.fora.core.model.DiTModel;
import dev.fora.core.recording.Recorder;
import dev.fora.core.recording.Recording;
import dev.fora.core.recording.ReplayDiT;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.ConditioningSpec;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.TextEmbeddings;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.DdimSampler;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.sampling.DenoisingModel;
import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.NoiseSource;
import dev.fora.core.sampling.PerImageNoise;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.tensor.TensorOps;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Function;

/**
 * Runs a cache policy on a {@link SyntheticDiT} and compares the result with the uncached
 * run from the same seeds, so a policy author can test a policy in milliseconds:
 * <pre>{@code
 * HarnessReport report = PolicyHarness.builder().steps(50).build().run(myPolicy);
 * assertThat(report.relativeL1Error()).isLessThan(0.05);
 * }</pre>
 * Defaults: {@link SyntheticDiT#SMALL} (class labels; {@link SyntheticDiT#CROSS_ATTENTION_SMALL}
 * gives a text-conditioned model with cross-attention), 50 DDIM steps, batch 2, CFG scale 1.5
 * (FORA's setting), fixed seeds. Image {@code k} has its own conditioning (label
 * {@code k % classes}, or its own random text of {@code 1 + k % tokens} real tokens) and its
 * own noise (seed {@code noiseSeed + k}), so it is the same image in any batch:
 * {@link #batchInvarianceError} checks that the policy keeps it so. Every run uses fresh
 * {@link ArrayOps}, so the report can say whether the generation left tensors behind.
 *
 * <p>{@link #replay(Recording, CachePolicy)} runs a policy against a recorded generation of a
 * real model instead ({@code fora record}), without the model.
 */
public final class PolicyHarness {

    private final DiTConfig config;
    private final long modelSeed;
    private final long noiseSeed;
    private final int steps;
    private final int batch;
    private final double cfgScale;
    private final long cacheBudget;
    private final Function<DiffusionSchedule, DiffusionSampler> sampler;
    private float[] reference;

    private PolicyHarness(Builder b) {
        this.config = b.config;
        this.modelSeed = b.modelSeed;
        this.noiseSeed = b.noiseSeed;
        this.steps = b.steps;
        this.batch = b.batch;
        this.cfgScale = b.cfgScale;
        this.cacheBudget = b.cacheBudget;
        this.sampler = b.sampler;
    }

    /** A harness with the defaults. */
    public static PolicyHarness withDefaults() {
        return builder().build();
    }

    /** A builder starting from the defaults. */
    public static Builder builder() {
        return new Builder();
    }

    /** Runs the policy given by a spec string ({@link CachePolicies#parse}). */
    public HarnessReport run(String spec) {
        return run(CachePolicies.parse(spec));
    }

    /**
     * Runs {@code policy} on the whole batch and compares its output with the uncached output.
     *
     * @throws dev.fora.core.engine.CacheBudgetException if a cache budget is set and the policy may exceed it
     */
    public HarnessReport run(CachePolicy policy) {
        float[] uncached = reference();
        ArrayOps ops = new ArrayOps();
        SyntheticDiT model = new SyntheticDiT(ops, config, modelSeed);
        int[] images = allImages();
        Generation<ArrayTensor> generation = open(model, policy, images.length);
        float[] output;
        try (generation; ArrayTensor result = generate(model, generation, images)) {
            output = ops.toFloats(result);
        }
        boolean guided = cfgScale != 1.0;
        GenerationInfo info = new GenerationInfo(steps, config, images.length, guided,
                guided && !policy.separateGuidanceHalves() ? 2 : 1);
        return new HarnessReport(policy, info, generation.stats(), output, uncached, ops.liveTensors());
    }

    /**
     * The largest difference between an image generated in the batch and the same image
     * generated alone, over every image: 0 when the policy's decisions for an image depend only
     * on that image.
     */
    public double batchInvarianceError(CachePolicy policy) {
        float[] together = run(policy).output();
        int per = together.length / batch;
        double max = 0;
        for (int k = 0; k < batch; k++) {
            SyntheticDiT model = new SyntheticDiT(new ArrayOps(), config, modelSeed);
            try (Generation<ArrayTensor> g = open(model, policy, 1); ArrayTensor alone = generate(model, g, new int[] {k})) {
                float[] a = model.ops().toFloats(alone);
                for (int i = 0; i < per; i++) {
                    max = Math.max(max, Math.abs((double) a[i] - together[k * per + i]));
                }
            }
        }
        return max;
    }

    /** {@link #replay(Recording, CachePolicy)} of the policy a spec string names. */
    public static ReplayReport replay(Recording recording, String spec) {
        return replay(recording, CachePolicies.parse(spec));
    }

    /**
     * Replays {@code policy} against a recorded uncached generation ({@link Recording}, written by
     * {@code fora record} or a {@link dev.fora.core.recording.Recorder}), without the model:
     * every decision sees the recorded features and measurements, reuse and forecasts combine
     * recorded values, and the report estimates the policy's error from the last block's output
     * (see {@link ReplayReport}) and gives its decisions and compute fraction. Milliseconds for
     * the shipped model.
     *
     * @throws IllegalArgumentException if the policy does not fit the recording (a mask of
     *     another length, a measurement that was not recorded)
     */
    public static ReplayReport replay(Recording recording, CachePolicy policy) {
        long t0 = System.nanoTime();
        List<float[]> reference = referenceTokens(recording);
        ArrayOps ops = new ArrayOps();
        GenerationStats[] stats = new GenerationStats[1];
        List<float[]> tokens = replayTokens(recording, policy, stats, ops);
        int images = recording.images();
        int per = recording.config().tokens() * recording.config().hiddenSize();
        double[][] errors = new double[recording.steps()][images];
        for (int s = 0; s < recording.steps(); s++) {
            float[] h = tokens.get(s);
            float[] ref = reference.get(s);
            float[] in = recording.tokens(s);
            for (int image = 0; image < images; image++) {
                double num = 0;
                double den = 0;
                for (int row : recording.rowsOf(image)) {
                    for (int i = row * per; i < (row + 1) * per; i++) {
                        num += Math.abs((double) h[i] - ref[i]);
                        den += Math.abs((double) ref[i] - in[i]);
                    }
                }
                errors[s][image] = den == 0 ? num : num / den;
            }
        }
        return new ReplayReport(policy, stats[0], errors, System.nanoTime() - t0, ops.liveTensors());
    }

    /** The uncached replay of each recording, computed once. */
    private static final java.util.Map<Recording, List<float[]>> REFERENCES =
            java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());

    private static List<float[]> referenceTokens(Recording recording) {
        return REFERENCES.computeIfAbsent(recording, r -> replayTokens(r, NoCache.INSTANCE, null, new ArrayOps()));
    }

    /** The last block's output at every step of a replay of {@code policy}. */
    private static List<float[]> replayTokens(Recording recording, CachePolicy policy, GenerationStats[] stats, ArrayOps ops) {
        ReplayDiT model = new ReplayDiT(ops, recording);
        DiTConfig c = recording.config();
        int k = recording.steps();
        Conditioning conditioning = recording.conditioning();
        long[] shape = {recording.rows(), c.inChannels(), c.inputSize(), c.inputSize()};
        try (Generation<ArrayTensor> g = Generation.builder(model, policy).steps(k).images(recording.images())
                .guided(recording.guided()).open(); ArrayTensor x = ops.fromFloats(shape, new float[(int) (shape[0] * shape[1]
                        * shape[2] * shape[3])])) {
            for (int s = 0; s < k; s++) {
                g.predict(new SamplingStep(s, k, recording.timestep(s)), x, conditioning).close();
            }
            if (stats != null) {
                stats[0] = g.stats();
            }
        }
        return model.finalTokens();
    }

    /**
     * Records the uncached run of the harness's images ({@link Recorder}): what
     * {@link #replay(Recording, CachePolicy)} and {@link dev.fora.core.calibration.Calibration}
     * work on.
     */
    public Recording record() {
        SyntheticDiT model = new SyntheticDiT(new ArrayOps(), config, modelSeed);
        Recorder<ArrayTensor> recorder = new Recorder<>(model, batch, cfgScale != 1.0);
        try (Generation<ArrayTensor> g = open(recorder, NoCache.INSTANCE, batch); ArrayTensor result = generate(recorder, g,
                allImages())) {
            int[] labels = null;
            if (config.conditioning() instanceof ConditioningSpec.Classes) {
                labels = new int[batch];
                for (int k = 0; k < batch; k++) {
                    labels[k] = k % config.numClasses();
                }
            }
            return recorder.recording(labels, java.util.Map.of("model", "synthetic", "model_seed", Long.toString(modelSeed),
                    "noise_seed", Long.toString(noiseSeed), "cfg", Double.toString(cfgScale)));
        }
    }

    private Generation<ArrayTensor> open(DiTModel<ArrayTensor> model, CachePolicy policy, int images) {
        return Generation.builder(model, policy).steps(steps).images(images).guided(cfgScale != 1.0).cacheBudget(cacheBudget)
                .open();
    }

    private synchronized float[] reference() {
        if (reference == null) {
            SyntheticDiT model = new SyntheticDiT(new ArrayOps(), config, modelSeed);
            try (ArrayTensor result = generate(model, DenoisingModel.uncached(model), allImages())) {
                reference = model.ops().toFloats(result);
            }
        }
        return reference;
    }

    private int[] allImages() {
        int[] all = new int[batch];
        for (int k = 0; k < batch; k++) {
            all[k] = k;
        }
        return all;
    }

    /** Generates the given images of the batch (their own conditioning and noise) through {@code denoiser}. */
    private ArrayTensor generate(DiTModel<ArrayTensor> model, DenoisingModel<ArrayTensor> denoiser, int[] images) {
        TensorOps<ArrayTensor> ops = model.ops();
        DiffusionSampler s = sampler.apply(DiffusionSchedule.linear(1000).respace(steps));
        DenoisingModel<ArrayTensor> guided = new ClassifierFreeGuidance<>(ops, denoiser, cfgScale, model.unconditional());
        List<NoiseSource> noise = new ArrayList<>();
        Conditioning conditioning = null;
        for (int k : images) {
            noise.add(new SeededGaussianNoise(noiseSeed + k));
            Conditioning c = conditioning(k);
            conditioning = conditioning == null ? c : conditioning.concat(c);
        }
        long[] shape = {images.length, config.inChannels(), config.inputSize(), config.inputSize()};
        return s.sample(ops, guided, shape, conditioning, new PerImageNoise(noise));
    }

    /** Image {@code k}'s conditioning. */
    private Conditioning conditioning(int k) {
        if (config.conditioning() instanceof ConditioningSpec.Text text) {
            boolean[] mask = new boolean[text.tokens()];
            for (int t = 0; t <= k % text.tokens(); t++) {
                mask[t] = true;
            }
            float[] values = new SeededGaussianNoise(noiseSeed * 31 + k).next(new long[] {text.tokens(), text.width()});
            return new TextEmbeddings(text.tokens(), text.width(), values, mask);
        }
        return ClassLabels.of(k % config.numClasses());
    }

    /** Configures a {@link PolicyHarness}. */
    public static final class Builder {
        private DiTConfig config = SyntheticDiT.SMALL;
        private long modelSeed = 1;
        private long noiseSeed = 42;
        private int steps = 50;
        private int batch = 2;
        private double cfgScale = 1.5;
        private long cacheBudget = Long.MAX_VALUE;
        private Function<DiffusionSchedule, DiffusionSampler> sampler = DdimSampler::new;

        private Builder() {
        }

        /** Shape of the synthetic model: {@link SyntheticDiT#SMALL}, {@link SyntheticDiT#CROSS_ATTENTION_SMALL} or your own. */
        public Builder config(DiTConfig config) {
            this.config = Objects.requireNonNull(config, "config");
            return this;
        }

        /** Seed of the synthetic model's weights. */
        public Builder modelSeed(long seed) {
            this.modelSeed = seed;
            return this;
        }

        /** Image {@code k}'s noise comes from seed {@code seed + k}. */
        public Builder noiseSeed(long seed) {
            this.noiseSeed = seed;
            return this;
        }

        /** Number of sampler steps {@code K}. */
        public Builder steps(int steps) {
            if (steps < 1 || steps > 1000) {
                throw new IllegalArgumentException("steps must be in 1..1000, got " + steps);
            }
            this.steps = steps;
            return this;
        }

        /** Number of images. */
        public Builder batch(int batch) {
            if (batch < 1) {
                throw new IllegalArgumentException("batch must be >= 1, got " + batch);
            }
            this.batch = batch;
            return this;
        }

        /** Classifier-free guidance scale; 1 disables guidance. */
        public Builder cfgScale(double scale) {
            this.cfgScale = scale;
            return this;
        }

        /** The most bytes the cache may hold; a policy that may need more is refused. */
        public Builder cacheBudget(long bytes) {
            this.cacheBudget = bytes;
            return this;
        }

        /** The sampler, built from the respaced schedule (default {@link DdimSampler}). */
        public Builder sampler(Function<DiffusionSchedule, DiffusionSampler> sampler) {
            this.sampler = Objects.requireNonNull(sampler, "sampler");
            return this;
        }

        /** The harness. */
        public PolicyHarness build() {
            return new PolicyHarness(this);
        }
    }
}
