package dev.fora.core.engine;

import dev.fora.core.cache.BlockRange;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.Decision;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.DiTModel;
import dev.fora.core.sampling.DenoisingModel;
import dev.fora.core.sampling.NonFiniteOutputException;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A lockstep batch of images under one cache policy, as the model of a sampler loop you drive:
 * every image is at the same step, and {@link #predict} runs one model pass for all of them.
 * It is the case of the engine's passes where every run is at one step; {@link StepScheduler}
 * runs passes over images at different steps.
 *
 * <p>Each image has its own decider (one per guidance half if the policy
 * {@link CachePolicy#separateGuidanceHalves() separates them}) and its own cache slots, so an
 * image's decisions and output do not depend on its batch.
 *
 * <h2>Rows</h2>
 * A generation of {@code N} images runs {@code N} rows, or {@code 2N} when guided: rows
 * {@code 0..N-1} conditional, rows {@code N..2N-1} unconditional, as DiT's
 * {@code forward_with_cfg} stacks them (and {@link dev.fora.core.sampling.ClassifierFreeGuidance}
 * builds them).
 *
 * <h2>Rules</h2>
 * Steps run exactly once each, in order {@code 0..K-1}; anything else, or use after close, is an
 * {@link IllegalStateException}. The input is checked before a step counts as run: a latent of
 * the wrong shape or batch, or conditioning the model does not take, is an
 * {@link IllegalArgumentException} that leaves the generation at the same step. If a step throws
 * once running, close the generation. Closing releases every cached tensor.
 *
 * <p>Unless turned off ({@link Builder#checkFinite(boolean)}), each step's output is checked with
 * one reduction: NaN or infinity is a {@link NonFiniteOutputException} naming the step, the image
 * and the half.
 *
 * <pre>{@code
 * try (Generation<T> g = Generation.builder(model, policy).steps(50).images(4).guided(true).open()) {
 *     T x = sampler.sample(ops, new ClassifierFreeGuidance<>(ops, g, 1.5, model.unconditional()),
 *             shape, ClassLabels.of(labels), noise);
 *     log(g.stats());
 * }
 * }</pre>
 *
 * @param <T> tensor type
 */
public final class Generation<T extends Tensor> implements DenoisingModel<T>, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(Generation.class);

    private final TensorOps<T> ops;
    private final DiTConfig config;
    private final CachePolicy policy;
    private final GenerationInfo info;
    private final List<DeciderState<T>> states;
    private final ModelPass<T> pass;
    private final CacheMemory<T> memory;
    private final boolean checkFinite;
    private final GenerationStats stats;
    private int nextStep;
    private boolean closed;

    private Generation(Builder<T> b) {
        this.ops = b.model.ops();
        this.config = b.model.config();
        this.policy = b.policy;
        if (b.steps < 1) {
            throw new IllegalArgumentException("a generation needs at least one step, got " + b.steps);
        }
        if (b.images < 1) {
            throw new IllegalArgumentException("a generation needs at least one image, got " + b.images);
        }
        boolean separate = b.guided && policy.separateGuidanceHalves();
        this.info = new GenerationInfo(b.steps, config, b.images, b.guided, b.guided && !separate ? 2 : 1);
        Declarations declarations = new Declarations(policy, info);
        declarations.checkBudget(b.cacheBudget);
        int deciders = separate ? info.rows() : b.images;
        this.stats = new GenerationStats(info, deciders);
        this.states = new ArrayList<>(deciders);
        for (int u = 0; u < deciders; u++) {
            DeciderState<T> s = new DeciderState<>(declarations.newDecider(), declarations, stats, u, describeDecider(u),
                    info.rowsPerDecider());
            s.batchRows = info.rowsPerDecider() == 2 ? new int[] {u, u + b.images} : new int[] {u};
            states.add(s);
        }
        this.memory = new CacheMemory<>(ops);
        this.checkFinite = b.checkFinite;
        this.pass = new ModelPass<>(new PassLayout<>(b.model, states, info.rows(), memory),
                b.fusedSteps ? b.model.fusedSteps().orElse(null) : null);
    }

    /** Starts describing a generation of {@code model} under {@code policy}. */
    public static <T extends Tensor> Builder<T> builder(DiTModel<T> model, CachePolicy policy) {
        return new Builder<>(model, policy);
    }

    /** Configures and opens a {@link Generation}. */
    public static final class Builder<T extends Tensor> {
        private final DiTModel<T> model;
        private final CachePolicy policy;
        private int steps = -1;
        private int images = -1;
        private boolean guided;
        private long cacheBudget = Long.MAX_VALUE;
        private boolean fusedSteps = true;
        private boolean checkFinite = true;

        private Builder(DiTModel<T> model, CachePolicy policy) {
            this.model = Objects.requireNonNull(model, "model");
            this.policy = Objects.requireNonNull(policy, "policy");
        }

        /** Number of sampler steps {@code K} (required). */
        public Builder<T> steps(int k) {
            this.steps = k;
            return this;
        }

        /** Number of images in the batch (required). */
        public Builder<T> images(int n) {
            this.images = n;
            return this;
        }

        /** Whether every image runs as a conditional and an unconditional row (CFG); default false. */
        public Builder<T> guided(boolean on) {
            this.guided = on;
            return this;
        }

        /**
         * The most bytes the cache may hold (default: unlimited). {@link #open()} refuses a
         * policy whose worst case is larger with a {@link dev.fora.core.engine.CacheBudgetException}.
         */
        public Builder<T> cacheBudget(long bytes) {
            if (bytes < 0) {
                throw new IllegalArgumentException("cache budget must be >= 0 bytes, got " + bytes);
            }
            this.cacheBudget = bytes;
            return this;
        }

        /**
         * Whether passes whose decisions are uniform run as one call of the model's
         * {@link DiTModel#fusedSteps()} (default true; a model without them, or a policy that
         * declares measurements or block ranges, always runs the stages).
         */
        public Builder<T> fusedSteps(boolean on) {
            this.fusedSteps = on;
            return this;
        }

        /** Whether each step's output is checked for NaN and infinity (default true). */
        public Builder<T> checkFinite(boolean on) {
            this.checkFinite = on;
            return this;
        }

        /**
         * Opens the generation: checks the policy's declarations against the model, its worst
         * case against the budget, and makes one decider per image (or guidance half).
         */
        public Generation<T> open() {
            return new Generation<>(this);
        }
    }

    /**
     * Runs the cached forward pass of one sampler step.
     *
     * @param step the sampler step; must be the next one ({@code step() == 0} first)
     * @param x latent {@code [rows, C, H, W]}
     * @param conditioning one row per latent row
     * @return model output {@code [rows, outC, H, W]} in the caller's current scope
     * @throws IllegalArgumentException for input that does not fit the model or this batch;
     *     the step is then not consumed
     * @throws IllegalStateException if the generation is closed or the step is out of order
     */
    @Override
    public T predict(SamplingStep step, T x, Conditioning conditioning) {
        checkStep(step);
        checkInput(x, conditioning);
        nextStep = step.step() + 1;
        stats.startStep(step.step());
        for (DeciderState<T> s : states) {
            s.step = step;
        }
        float[] timesteps = new float[info.rows()];
        Arrays.fill(timesteps, (float) step.timestep());
        ModelPass.begin(states);
        Decision[][] decided = pass.fusable() ? ModelPass.decide(states, config) : null;
        throwIfFailed();
        T out = pass.run(x, timesteps, conditioning, decided);
        if (Asking.failure(states) != null) {
            out.close();
            throwIfFailed();
        }
        if (checkFinite) {
            try {
                NonFiniteOutputException.check(ops, out, step, this::describeRow);
            } catch (NonFiniteOutputException e) {
                out.close();
                throw e;
            }
        }
        ModelPass.end(states);
        if (Asking.failure(states) != null) {
            out.close();
            throwIfFailed();
        }
        stats.updatePeakCacheBytes(memory.peak());
        if (LOG.isTraceEnabled()) {
            LOG.trace("step {} (t={}): cache {} bytes", step.step(), step.timestep(), memory.current());
        }
        return out;
    }

    /** A policy's failure ends the lockstep generation: every image shares its steps. */
    private void throwIfFailed() {
        RuntimeException failure = Asking.failure(states);
        if (failure != null) {
            throw failure;
        }
    }

    private void checkStep(SamplingStep step) {
        Objects.requireNonNull(step, "step");
        int s = step.step();
        if (closed) {
            throw new IllegalStateException("the generation is closed; open a new one for step " + s);
        }
        if (step.totalSteps() != info.totalSteps()) {
            throw new IllegalStateException("the sampler runs " + step.totalSteps() + " steps but this generation was opened for "
                    + info.totalSteps());
        }
        if (s < nextStep) {
            throw new IllegalStateException("step " + s + " has already run; the next step is " + nextStep);
        }
        if (s != nextStep) {
            throw new IllegalStateException("step " + s + " requested but step " + nextStep
                    + " has not run; steps must run in order 0.." + (info.totalSteps() - 1));
        }
        if (!Double.isFinite(step.timestep())) {
            throw new IllegalArgumentException("timestep must be finite, got " + step.timestep());
        }
    }

    private void checkInput(T x, Conditioning conditioning) {
        Objects.requireNonNull(x, "x");
        long[] shape = x.shape();
        long[] want = {info.rows(), config.inChannels(), config.inputSize(), config.inputSize()};
        if (!Arrays.equals(shape, want)) {
            throw new IllegalArgumentException("latent shape " + Arrays.toString(shape) + " does not fit this generation: expected "
                    + Arrays.toString(want) + " ([" + (info.guided() ? "2 x " : "") + info.images()
                    + " images, in_channels, input_size, input_size])");
        }
        config.conditioning().check(conditioning, info.rows(), true);
    }

    private String describeRow(int r) {
        int images = info.images();
        return "image " + (r % images) + (info.guided() ? (r < images ? " (conditional half)" : " (unconditional half)") : "");
    }

    private String describeDecider(int u) {
        int images = info.images();
        boolean halves = info.guided() && info.rowsPerDecider() == 1;
        return "image " + (u % images) + (halves ? (u < images ? " (conditional half)" : " (unconditional half)") : "");
    }

    /** The policy of this generation. */
    public CachePolicy policy() {
        return policy;
    }

    /** Steps, model, batch: what the policy was told. */
    public GenerationInfo info() {
        return info;
    }

    /** The next step to run ({@code totalSteps} when done). */
    public int nextStep() {
        return nextStep;
    }

    /** The statistics so far (a live view; still readable after close). */
    public GenerationStats stats() {
        return stats;
    }

    /** Bytes the cache holds now. */
    public long cacheBytes() {
        return memory.current();
    }

    /** The most bytes the cache has held. */
    public long peakCacheBytes() {
        return memory.peak();
    }

    /**
     * The steps at which decider {@code decider}'s cached values of a feature were computed, most
     * recent first. Deciders are numbered as images ({@code 0..N-1}), or as rows when the policy
     * separates guidance halves.
     */
    public int[] computedSteps(int feature, int decider) {
        return states.get(decider).computedSteps(feature);
    }

    /** The step at which decider {@code decider}'s cached residual of {@code range} was computed, if any. */
    public OptionalInt residualComputedAt(BlockRange range, int decider) {
        return states.get(decider).residualComputedAt(range);
    }

    /** Whether the generation is closed. */
    public boolean isClosed() {
        return closed;
    }

    /** Releases the cache. Idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            states.forEach(DeciderState::close);
            memory.close();
            LOG.debug("generation with policy {} finished: {}", Declarations.describe(policy), stats);
        }
    }
}
