package dev.fora.djl;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.NoCache;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.Conditioning;
import dev.fora.core.sampling.CancelToken;
import dev.fora.core.sampling.NoiseSource;
import dev.fora.core.sampling.PerImageNoise;
import dev.fora.core.sampling.SamplerKind;
import dev.fora.core.sampling.StepListener;
import java.util.Objects;

/**
 * What to generate: conditioning, guidance scale, sampler, steps, cache policy and noise.
 * Build with {@link #builder(int...)} (class labels) or {@link #builder(Conditioning)};
 * defaults: DDIM, 50 steps, no cache, guidance 1.5, seed 0, x0 clipped to [-1, 1], the cached
 * forward with fused uniform steps, no cache budget, no cancel token, the finite check on.
 *
 * <p><b>The seed rule.</b> Image {@code k} of a request with seed {@code S} draws its noise
 * from its own stream, {@code SeededGaussianNoise(S + k)} ({@link PerImageNoise#seeded}), and
 * is decided by its own decider. So an image depends only on its own conditioning, seed,
 * policy, sampler, steps and guidance: the images of a request of 8 with seed {@code S}
 * equal those of 8 requests of one with seeds {@code S..S+7}.
 *
 * <p>A request is immutable and built only through its {@link Builder}, so that new options
 * never break callers.
 */
public final class GenerationRequest {

    /** How the sampler runs the model each step. */
    public enum Forward {
        /**
         * Through the feature cache, under any policy: stage by stage, or as one fused call on
         * steps whose decisions are uniform ({@link Builder#fusedSteps}).
         */
        CACHED,
        /**
         * One call of the exported whole-model forward per step: the uncached baseline without
         * any stage overhead. Only with the {@code none} policy.
         */
        WHOLE_MODEL
    }

    private final Conditioning conditioning;
    private final double cfgScale;
    private final SamplerKind sampler;
    private final int steps;
    private final CachePolicy policy;
    private final long seed;
    private final NoiseSource noise;
    private final boolean clipDenoised;
    private final StepListener stepListener;
    private final Forward forward;
    private final long cacheBudget;
    private final boolean fusedSteps;
    private final CancelToken cancel;
    private final boolean checkFinite;
    private final int guidedChannels;
    private final boolean decode;

    /** Validates what can be checked without the model. */
    private GenerationRequest(Builder b) {
        conditioning = b.conditioning;
        cfgScale = b.cfgScale;
        sampler = b.sampler;
        steps = b.steps;
        policy = b.policy;
        seed = b.seed;
        noise = b.noise;
        clipDenoised = b.clipDenoised;
        stepListener = b.stepListener;
        forward = b.forward;
        cacheBudget = b.cacheBudget;
        fusedSteps = b.fusedSteps;
        cancel = b.cancel;
        checkFinite = b.checkFinite;
        guidedChannels = b.guidedChannels;
        decode = b.decode;
        Objects.requireNonNull(conditioning, "conditioning");
        if (conditioning.size() == 0) {
            throw new IllegalArgumentException("at least one image is needed");
        }
        if (!Double.isFinite(cfgScale) || cfgScale < 0) {
            throw new IllegalArgumentException("cfgScale must be finite and >= 0, got " + cfgScale);
        }
        Objects.requireNonNull(sampler, "sampler");
        if (steps < 1) {
            throw new IllegalArgumentException("steps must be >= 1, got " + steps);
        }
        Objects.requireNonNull(policy, "policy");
        Objects.requireNonNull(stepListener, "stepListener");
        Objects.requireNonNull(forward, "forward");
        if (forward == Forward.WHOLE_MODEL && policy != NoCache.INSTANCE) {
            throw new IllegalArgumentException("the whole-model forward cannot cache; its policy must be none, not "
                    + policy.spec().orElse(policy.toString()));
        }
        if (cacheBudget < 0) {
            throw new IllegalArgumentException("cacheBudget must be >= 0 bytes, got " + cacheBudget);
        }
        if (guidedChannels < 0) {
            throw new IllegalArgumentException("guidedChannels must be >= 0 (0 = the model's), got " + guidedChannels);
        }
        Objects.requireNonNull(cancel, "cancel");
    }

    /** One row per image: class labels ({@code 0..numClasses-1}) or text embeddings. */
    public Conditioning conditioning() {
        return conditioning;
    }

    /** Classifier-free guidance scale, finite and {@code >= 0} (1 = no guidance, no unconditional half). */
    public double cfgScale() {
        return cfgScale;
    }

    /** The sampler. */
    public SamplerKind sampler() {
        return sampler;
    }

    /** Sampler steps {@code K}. */
    public int steps() {
        return steps;
    }

    /** The cache policy. */
    public CachePolicy policy() {
        return policy;
    }

    /** Seed of image 0's noise; image {@code k} uses {@code seed + k} (when {@link #noise()} is null). */
    public long seed() {
        return seed;
    }

    /**
     * A noise source for the whole batch to use instead of the seeds (e.g. replayed noise), or
     * null; a source is stateful, so a request with one can be generated only once.
     */
    public NoiseSource noise() {
        return noise;
    }

    /**
     * Whether predicted x0 is clipped to [-1, 1] (only if the model allows it: latent models, whose
     * manifest says {@code diffusion.clip_denoised: false}, are never clipped, as DiT's and
     * PixArt-α's samplers do not clip latents).
     */
    public boolean clipDenoised() {
        return clipDenoised;
    }

    /** Told after each sampler step ({@link Builder#onStep}); never null. */
    public StepListener stepListener() {
        return stepListener;
    }

    /** The forward path. */
    public Forward forward() {
        return forward;
    }

    /** The most bytes the feature cache may hold ({@code Long.MAX_VALUE}: no limit). */
    public long cacheBudget() {
        return cacheBudget;
    }

    /**
     * Whether steps with uniform decisions run as one call of the exported fused step methods when
     * the model has them (the staged path otherwise); the results agree within float rounding.
     */
    public boolean fusedSteps() {
        return fusedSteps;
    }

    /** Stops the generation between steps once cancelled ({@link Builder#cancel}); never null. */
    public CancelToken cancel() {
        return cancel;
    }

    /** Whether each step's model output is checked for NaN and infinity ({@link Builder#checkFinite}). */
    public boolean checkFinite() {
        return checkFinite;
    }

    /**
     * How many leading latent channels guidance mixes, or 0 for the model's own count
     * ({@link ModelManifest.Guidance}: DiT's official checkpoints guide 3 of 4).
     */
    public int guidedChannels() {
        return guidedChannels;
    }

    /**
     * Whether a model directory's latent decoder turns the latents into images (without a decoder
     * the samples are the images).
     */
    public boolean decode() {
        return decode;
    }

    /** Number of images. */
    public int images() {
        return conditioning.size();
    }

    /** The noise of this request: the given source, or one seeded stream per image. */
    public NoiseSource noiseSource() {
        return noise != null ? noise : PerImageNoise.seeded(seed, images());
    }

    /** A builder for images of the given class labels. */
    public static Builder builder(int... labels) {
        return new Builder(ClassLabels.of(labels));
    }

    /** A builder for images of the given conditioning, one row per image. */
    public static Builder builder(Conditioning conditioning) {
        return new Builder(Objects.requireNonNull(conditioning, "conditioning"));
    }

    /**
     * A builder for images of the given prompts, one image per prompt: they are encoded now by
     * {@code encoder} (see {@link TextEncoder#encode}), which the request does not keep.
     *
     * @throws IllegalArgumentException if there is no prompt
     */
    public static Builder builder(TextEncoder encoder, java.util.List<String> prompts) {
        return new Builder(Objects.requireNonNull(encoder, "encoder").encode(prompts));
    }

    /** Builder of {@link GenerationRequest}. */
    public static final class Builder {
        private final Conditioning conditioning;
        private double cfgScale = 1.5;
        private SamplerKind sampler = SamplerKind.DDIM;
        private int steps = 50;
        private CachePolicy policy = NoCache.INSTANCE;
        private long seed;
        private NoiseSource noise;
        private boolean clipDenoised = true;
        private StepListener stepListener = StepListener.NONE;
        private Forward forward = Forward.CACHED;
        private long cacheBudget = Long.MAX_VALUE;
        private boolean fusedSteps = true;
        private int guidedChannels;
        private boolean decode = true;
        private CancelToken cancel = CancelToken.NONE;
        private boolean checkFinite = true;

        private Builder(Conditioning conditioning) {
            this.conditioning = conditioning;
        }

        /** Guidance scale (default 1.5; 1 disables guidance). */
        public Builder cfgScale(double scale) {
            this.cfgScale = scale;
            return this;
        }

        /** Sampler (default DDIM). */
        public Builder sampler(SamplerKind kind) {
            this.sampler = kind;
            return this;
        }

        /** Sampler by name: {@code ddim}, {@code ddpm}, {@code dpm-solver++}, {@code dpms}. */
        public Builder sampler(String name) {
            this.sampler = SamplerKind.parse(name);
            return this;
        }

        /** Sampler steps (default 50). */
        public Builder steps(int k) {
            this.steps = k;
            return this;
        }

        /** Cache policy (default {@link NoCache}). */
        public Builder policy(CachePolicy p) {
            this.policy = p;
            return this;
        }

        /** Cache policy by spec, e.g. {@code fora:3} (see {@link CachePolicies#parse(String)}). */
        public Builder policy(String spec) {
            this.policy = CachePolicies.parse(spec);
            return this;
        }

        /** Seed of image 0 (default 0); image {@code k} uses {@code seed + k}. */
        public Builder seed(long s) {
            this.seed = s;
            return this;
        }

        /** A noise source for the batch to use instead of the seeds: x_T first, then one draw per stochastic step. */
        public Builder noise(NoiseSource source) {
            this.noise = source;
            return this;
        }

        /** Whether predicted x0 is clipped to [-1, 1] (default true, as for images). */
        public Builder clipDenoised(boolean clip) {
            this.clipDenoised = clip;
            return this;
        }

        /**
         * A progress hook: {@code listener.onStep(step, totalSteps)} is called after each sampler
         * step, for {@code step = 0..totalSteps-1} in order, once each, on the thread that runs
         * {@link DiTPipeline#generate}. It does not change the images. An exception it throws
         * aborts the generation (everything is released) and comes out of {@code generate}.
         * Default: none.
         */
        public Builder onStep(StepListener listener) {
            this.stepListener = Objects.requireNonNull(listener, "listener");
            return this;
        }

        /** The forward path (default {@link Forward#CACHED}). */
        public Builder forward(Forward path) {
            this.forward = path;
            return this;
        }

        /** The most bytes the feature cache may hold (default: no limit); a policy that may need more is refused. */
        public Builder cacheBudget(long bytes) {
            this.cacheBudget = bytes;
            return this;
        }

        /** Whether uniform steps run as one fused call when the model has them (default true). */
        public Builder fusedSteps(boolean on) {
            this.fusedSteps = on;
            return this;
        }

        /**
         * How many leading latent channels classifier-free guidance mixes (default 0: the model
         * directory's count, {@code guidance.guided_channels}).
         */
        public Builder guidedChannels(int channels) {
            this.guidedChannels = channels;
            return this;
        }

        /** Whether to decode the latents with the model directory's decoder, if it has one (default true). */
        public Builder decode(boolean on) {
            this.decode = on;
            return this;
        }

        /**
         * A token that stops the generation: once it is cancelled (from any thread),
         * {@link DiTPipeline#generate} throws a
         * {@link dev.fora.core.sampling.GenerationCancelledException} before its next step,
         * having released everything. One token may serve many requests. Interrupting the
         * generating thread does the same without a token. Default: none.
         */
        public Builder cancel(CancelToken token) {
            this.cancel = Objects.requireNonNull(token, "token");
            return this;
        }

        /**
         * Whether each step's model output is checked for NaN and infinity (default true): broken
         * weights or NaN noise then fail with a
         * {@link dev.fora.core.sampling.NonFiniteOutputException} naming the step and image,
         * instead of sampling on to black images. One native reduction per step.
         */
        public Builder checkFinite(boolean on) {
            this.checkFinite = on;
            return this;
        }

        /** The request. */
        public GenerationRequest build() {
            return new GenerationRequest(this);
        }
    }
}
