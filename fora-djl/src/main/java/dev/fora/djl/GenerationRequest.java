package dev.fora.djl;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.NoCache;
import dev.fora.core.sampling.NoiseSource;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.sampling.StepListener;
import java.util.Objects;

/**
 * What to generate: class labels, guidance scale, sampler, steps, cache policy and noise.
 * Build with {@link #builder(int...)}; defaults: DDIM, 50 steps, no cache, guidance 1.5,
 * seed 0, x0 clipped to [-1, 1].
 *
 * @param labels one class label per image ({@code 0..numClasses-1})
 * @param cfgScale classifier-free guidance scale (1 = no guidance, no unconditional half)
 * @param sampler the sampler
 * @param steps sampler steps {@code K}
 * @param policy the cache policy
 * @param seed seed of the Gaussian noise (used when {@code noise} is null)
 * @param noise a noise source to use instead of the seed (e.g. replayed noise), or null; a
 *     source is stateful, so a request with one can be generated only once
 * @param clipDenoised whether predicted x0 is clipped to [-1, 1]
 * @param stepListener told after each sampler step ({@link Builder#onStep}); never null
 *     ({@link StepListener#NONE} when not set)
 */
public record GenerationRequest(int[] labels, double cfgScale, SamplerKind sampler, int steps, CachePolicy policy,
        long seed, NoiseSource noise, boolean clipDenoised, StepListener stepListener) {

    /** Validates what can be checked without the model. */
    public GenerationRequest {
        Objects.requireNonNull(labels, "labels");
        if (labels.length == 0) {
            throw new IllegalArgumentException("at least one label is needed");
        }
        labels = labels.clone();
        if (!Double.isFinite(cfgScale)) {
            throw new IllegalArgumentException("cfgScale must be finite, got " + cfgScale);
        }
        Objects.requireNonNull(sampler, "sampler");
        if (steps < 1) {
            throw new IllegalArgumentException("steps must be >= 1, got " + steps);
        }
        Objects.requireNonNull(policy, "policy");
        if (stepListener == null) {
            stepListener = StepListener.NONE;
        }
    }

    /** A request without a step listener. */
    public GenerationRequest(int[] labels, double cfgScale, SamplerKind sampler, int steps, CachePolicy policy,
            long seed, NoiseSource noise, boolean clipDenoised) {
        this(labels, cfgScale, sampler, steps, policy, seed, noise, clipDenoised, StepListener.NONE);
    }

    @Override
    public int[] labels() {
        return labels.clone();
    }

    /** The noise source of this request: the given one, or Gaussian noise from the seed. */
    public NoiseSource noiseSource() {
        return noise != null ? noise : new SeededGaussianNoise(seed);
    }

    /** A builder for images of the given class labels. */
    public static Builder builder(int... labels) {
        return new Builder(labels);
    }

    /** Builder of {@link GenerationRequest}. */
    public static final class Builder {
        private final int[] labels;
        private double cfgScale = 1.5;
        private SamplerKind sampler = SamplerKind.DDIM;
        private int steps = 50;
        private CachePolicy policy = NoCache.INSTANCE;
        private long seed;
        private NoiseSource noise;
        private boolean clipDenoised = true;
        private StepListener stepListener = StepListener.NONE;

        private Builder(int[] labels) {
            this.labels = labels.clone();
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

        /** Sampler by name: {@code ddim}, {@code ddpm}, {@code dpm-solver++}. */
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

        /** Noise seed (default 0). */
        public Builder seed(long s) {
            this.seed = s;
            return this;
        }

        /** A noise source to use instead of the seed: x_T first, then one draw per stochastic step. */
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

        /** The request. */
        public GenerationRequest build() {
            return new GenerationRequest(labels, cfgScale, sampler, steps, policy, seed, noise, clipDenoised, stepListener);
        }
    }
}
