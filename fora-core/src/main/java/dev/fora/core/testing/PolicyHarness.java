package dev.fora.core.testing;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.CachedDiT;
import dev.fora.core.cache.GenerationSession;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.DdimSampler;
import dev.fora.core.sampling.DenoisingModel;
import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import java.util.Objects;
import java.util.function.Function;

/**
 * Runs a cache policy on a {@link SyntheticDiT} and compares the result with the uncached
 * run from the same seed, so a policy author can test a policy in milliseconds:
 * <pre>{@code
 * HarnessReport report = PolicyHarness.builder().steps(50).build().run(myPolicy);
 * assertThat(report.relativeL1Error()).isLessThan(0.05);
 * }</pre>
 * Defaults: {@link SyntheticDiT#SMALL}, 50 DDIM steps, batch 2, CFG scale 1.5 (FORA's
 * setting), fixed seeds. Every run uses fresh {@link ArrayOps}, so the report can say
 * whether the generation left tensors behind.
 */
public final class PolicyHarness {

    private final DiTConfig config;
    private final long modelSeed;
    private final long noiseSeed;
    private final int steps;
    private final int batch;
    private final double cfgScale;
    private final Function<DiffusionSchedule, DiffusionSampler> sampler;
    private float[] reference;

    private PolicyHarness(Builder b) {
        this.config = b.config;
        this.modelSeed = b.modelSeed;
        this.noiseSeed = b.noiseSeed;
        this.steps = b.steps;
        this.batch = b.batch;
        this.cfgScale = b.cfgScale;
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

    /** Runs {@code policy} and compares its output with the uncached output. */
    public HarnessReport run(CachePolicy policy) {
        float[] uncached = reference();
        ArrayOps ops = new ArrayOps();
        SyntheticDiT model = new SyntheticDiT(ops, config, modelSeed);
        float[] output;
        GenerationSession<ArrayTensor> session = new CachedDiT<>(model).newSession(policy, steps);
        try (session) {
            try (ArrayTensor result = generate(ops, session)) {
                output = ops.toFloats(result);
            }
        }
        return new HarnessReport(policy, session.stats(), output, uncached, ops.liveTensors());
    }

    private synchronized float[] reference() {
        if (reference == null) {
            ArrayOps ops = new ArrayOps();
            SyntheticDiT model = new SyntheticDiT(ops, config, modelSeed);
            try (ArrayTensor result = generate(ops, DenoisingModel.uncached(model))) {
                reference = ops.toFloats(result);
            }
        }
        return reference;
    }

    private ArrayTensor generate(ArrayOps ops, DenoisingModel<ArrayTensor> model) {
        DiffusionSampler s = sampler.apply(DiffusionSchedule.linear(1000).respace(steps));
        int[] labels = new int[batch];
        for (int i = 0; i < batch; i++) {
            labels[i] = i % config.numClasses();
        }
        DenoisingModel<ArrayTensor> guided = new ClassifierFreeGuidance<>(ops, model, cfgScale, config.nullLabel());
        long[] shape = {batch, config.inChannels(), config.inputSize(), config.inputSize()};
        return s.sample(ops, guided, shape, labels, new SeededGaussianNoise(noiseSeed));
    }

    /** Configures a {@link PolicyHarness}. */
    public static final class Builder {
        private DiTConfig config = SyntheticDiT.SMALL;
        private long modelSeed = 1;
        private long noiseSeed = 42;
        private int steps = 50;
        private int batch = 2;
        private double cfgScale = 1.5;
        private Function<DiffusionSchedule, DiffusionSampler> sampler = DdimSampler::new;

        private Builder() {
        }

        /** Size of the synthetic model. */
        public Builder config(DiTConfig config) {
            this.config = Objects.requireNonNull(config, "config");
            return this;
        }

        /** Seed of the synthetic model's weights. */
        public Builder modelSeed(long seed) {
            this.modelSeed = seed;
            return this;
        }

        /** Seed of the initial noise (and DDPM's per-step noise). */
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
