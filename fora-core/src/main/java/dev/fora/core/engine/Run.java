package dev.fora.core.engine;

import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.NoiseSource;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * One image's sampling under a {@link StepScheduler}: its conditioning, noise, sampler state,
 * current step, deciders, cache slots and stats. Each {@link StepScheduler#pass} over it runs
 * its next step, whatever step the other runs of the pass are at; its result is the same as if it
 * ran alone. A run is used from the scheduler's thread only.
 *
 * <p>A run is {@linkplain State#RUNNING running} until its last step, then
 * {@linkplain State#DONE done} (its {@link #latent()} is the sample). A step whose model output
 * holds NaN or infinity, or whose policy throws or answers what the cache cannot carry out, makes
 * it {@linkplain State#FAILED failed} (see {@link #failure()}) and releases its cache; the other
 * runs of the pass go on. {@link #close()} releases everything.
 *
 * @param <T> tensor type
 */
public final class Run<T extends Tensor> implements AutoCloseable {

    /** Where a run is. */
    public enum State {
        /** It has steps to run. */
        RUNNING,
        /** Its last step has run; {@link #latent()} is the sample. */
        DONE,
        /** A step failed; {@link #failure()} says why. */
        FAILED,
        /** {@link #close()} was called. */
        CLOSED
    }

    final List<DeciderState<T>> states;
    final GenerationInfo info;
    final Conditioning rows;
    final double cfgScale;
    final int guidedChannels;
    final boolean checkFinite;
    /** The most passes the run may wait for its first step, to start in phase with the others. */
    final int startWithin;
    /** The steps its policy computes in full, when the policy declares them; else null. */
    final BitSet fullSteps;
    /** Passes until its first step: -1 until the scheduler picks its start. */
    int startsIn;
    private final StepScheduler<T> scheduler;
    private final TensorOps<T> ops;
    private final DiffusionSampler sampler;
    private final DiffusionSampler.Stepper<T> stepper;
    private final TensorScope scope;
    private final GenerationStats stats;
    private final CachePolicy policy;
    /** The latent, or null while it is only a row of {@link #shared} (sliced when asked for). */
    private T x;
    private SharedLatents<T> shared;
    private int sharedRow;
    private int next;
    private State state = State.RUNNING;
    private RuntimeException failure;

    private Run(Builder<T> b) {
        this.scheduler = b.scheduler;
        this.ops = scheduler.model().ops();
        this.sampler = b.sampler;
        this.policy = b.policy;
        DiTConfig config = scheduler.model().config();
        config.conditioning().check(b.conditioning, 1, false);
        this.cfgScale = b.cfgScale;
        this.checkFinite = b.checkFinite;
        this.startWithin = b.startWithin;
        this.startsIn = b.startWithin == 0 ? 0 : -1;
        boolean guided = b.cfgScale != 1.0;
        int channels = b.guidedChannels == 0 ? config.inChannels() : b.guidedChannels;
        if (channels > config.inChannels()) {
            throw new IllegalArgumentException("cannot guide " + channels + " channels of a " + config.inChannels()
                    + "-channel latent");
        }
        this.guidedChannels = channels;
        this.rows = guided ? b.conditioning.concat(scheduler.model().unconditionalFor(b.conditioning)) : b.conditioning;
        boolean separate = guided && policy.separateGuidanceHalves();
        this.info = new GenerationInfo(sampler.steps(), config, 1, guided, guided && !separate ? 2 : 1);
        this.fullSteps = policy.fullSteps(info).orElse(null);
        Declarations declarations = new Declarations(policy, info);
        declarations.checkBudget(b.cacheBudget);
        int deciders = separate ? 2 : 1;
        this.stats = new GenerationStats(info, deciders);
        this.states = new ArrayList<>(deciders);
        for (int u = 0; u < deciders; u++) {
            String name = separate ? (u == 0 ? "the conditional half" : "the unconditional half") : "the image";
            states.add(new DeciderState<>(declarations.newDecider(), declarations, stats, u, name, info.rowsPerDecider()));
        }
        this.scope = ops.newDetachedScope();
        long[] shape = {1, config.inChannels(), config.inputSize(), config.inputSize()};
        NoiseSource noise = b.noise;
        this.x = ops.attach(ops.fromFloats(shape, noise.next(shape)), scope);
        this.stepper = sampler.newStepper(ops, noise);
    }

    /** Describes a run; {@link StepScheduler#newRun} starts one. */
    public static final class Builder<T extends Tensor> {
        private final StepScheduler<T> scheduler;
        private final CachePolicy policy;
        private final DiffusionSampler sampler;
        private Conditioning conditioning;
        private NoiseSource noise;
        private double cfgScale = 1.0;
        private int guidedChannels;
        private long cacheBudget = Long.MAX_VALUE;
        private boolean checkFinite = true;
        private int startWithin;

        Builder(StepScheduler<T> scheduler, CachePolicy policy, DiffusionSampler sampler) {
            this.scheduler = scheduler;
            this.policy = Objects.requireNonNull(policy, "policy");
            this.sampler = Objects.requireNonNull(sampler, "sampler");
        }

        /** The image's conditioning, one row (required). */
        public Builder<T> conditioning(Conditioning c) {
            this.conditioning = Objects.requireNonNull(c, "conditioning");
            return this;
        }

        /** The image's noise: its first draw is {@code x_T}, later draws feed the sampler (required). */
        public Builder<T> noise(NoiseSource source) {
            this.noise = Objects.requireNonNull(source, "noise");
            return this;
        }

        /**
         * Classifier-free guidance: the scale (1 = none, the default) and how many leading latent
         * channels are guided (0 = all).
         */
        public Builder<T> guidance(double scale, int channels) {
            if (!Double.isFinite(scale) || scale < 0) {
                throw new IllegalArgumentException("guidance scale must be finite and >= 0, got " + scale);
            }
            if (channels < 0) {
                throw new IllegalArgumentException("guided channels must be >= 0 (0 = all), got " + channels);
            }
            this.cfgScale = scale;
            this.guidedChannels = channels;
            return this;
        }

        /** The most bytes this run's cache may hold; a policy whose worst case is larger is refused. */
        public Builder<T> cacheBudget(long bytes) {
            if (bytes < 0) {
                throw new IllegalArgumentException("cache budget must be >= 0 bytes, got " + bytes);
            }
            this.cacheBudget = bytes;
            return this;
        }

        /**
         * Whether each step's model output is checked for NaN and infinity (default true): a run
         * whose output is not finite then fails alone instead of sampling on to a black image.
         */
        public Builder<T> checkFinite(boolean on) {
            this.checkFinite = on;
            return this;
        }

        /**
         * Lets the run wait up to {@code passes} passes for its first step, so that it starts in
         * phase with the runs already going: when its policy and theirs declare their
         * {@linkplain CachePolicy#fullSteps full steps}, the scheduler picks the start that leaves
         * the fewest of its steps without a run of the same kind (full or cached) to share a
         * fused call with. Its samples do not change. 0 (the default) starts it at the next
         * pass it is given to.
         */
        public Builder<T> startInPhase(int passes) {
            if (passes < 0) {
                throw new IllegalArgumentException("passes to wait must be >= 0, got " + passes);
            }
            this.startWithin = passes;
            return this;
        }

        /** Starts the run: draws its noise and makes its deciders; it joins the scheduler's next pass it is given to. */
        public Run<T> open() {
            Objects.requireNonNull(conditioning, "conditioning");
            Objects.requireNonNull(noise, "noise");
            Run<T> run = new Run<>(this);
            scheduler.opened(run);
            return run;
        }
    }

    /** The worst case of a policy's cache for one image of {@code config} (what a shared budget reserves). */
    public static long worstCaseBytes(CachePolicy policy, DiTConfig config, int steps, boolean guided) {
        boolean separate = guided && policy.separateGuidanceHalves();
        return new Declarations(policy, new GenerationInfo(steps, config, 1, guided, guided && !separate ? 2 : 1))
                .worstCaseBytes();
    }

    /** The next step to run ({@code totalSteps} when done). */
    public int nextStep() {
        return next;
    }

    /** Steps of this run's sampler. */
    public int totalSteps() {
        return info.totalSteps();
    }

    public State state() {
        return state;
    }

    /** Why the run failed, if it did. */
    public Optional<RuntimeException> failure() {
        return Optional.ofNullable(failure);
    }

    /** The policy the run caches under. */
    public CachePolicy policy() {
        return policy;
    }

    /** What caching did so far (readable after close). */
    public GenerationStats stats() {
        return stats;
    }

    /** Bytes of cached rows this run holds now. */
    public long cacheBytes() {
        long bytes = 0;
        for (DeciderState<T> s : states) {
            bytes += s.isClosed() ? 0 : s.bytes();
        }
        return bytes;
    }

    /**
     * The current latent {@code [1, C, H, W]}: the sample once {@link State#DONE}. Owned by the
     * run; valid until the next pass or {@link #close()}.
     */
    public T latent() {
        if (state == State.CLOSED) {
            throw new IllegalStateException("the run is closed");
        }
        if (x == null) {
            x = ops.attach(ops.sliceBatch(shared.batch, sharedRow, sharedRow + 1), scope);
        }
        return x;
    }

    // ---- what the scheduler does with it ----

    /** The latent as a row of a batch: of the last update's batch while the run holds a row of it. */
    BatchRow<T> latentRow() {
        return shared != null ? new BatchRow<>(shared.batch, sharedRow) : new BatchRow<>(x, 0);
    }

    /** Rows this run adds to a pass: 2 when guided. */
    int rowCount() {
        return info.guided() ? 2 : 1;
    }

    SamplingStep stepToRun() {
        return sampler.stepAt(next);
    }

    /** Points the deciders at the step this pass runs. */
    void startStep(SamplingStep step) {
        stats.startStep(step.step());
        for (DeciderState<T> s : states) {
            s.step = step;
        }
    }

    /** Places the run's rows in a pass's batch, from {@code offset}. */
    void place(int offset) {
        for (int u = 0; u < states.size(); u++) {
            states.get(u).batchRows = info.rowsPerDecider() == 2 ? new int[] {offset, offset + 1} : new int[] {offset + u};
        }
    }

    /** Takes this run's model output, after guidance: the sampler's update. */
    void advance(SamplingStep step, T eps) {
        T updated = ops.attach(stepper.step(step, latent(), eps), scope);
        dropLatent();
        x = updated;
        stepped();
    }

    /** This run's sampler's update at {@code step} when it is row-wise (batched with others' of the same rule). */
    Optional<DiffusionSampler.RowWiseUpdate> rowWiseUpdate(SamplingStep step) {
        return sampler.rowWiseUpdate(step);
    }

    /**
     * Advances runs whose samplers share a {@linkplain DiffusionSampler#rowWiseUpdate row-wise
     * rule} with one update over all their rows, each run's rows with its own step's coefficients
     * ({@code updates}); {@code latents} and {@code outputs} hold the runs' rows in order. In the
     * current scope.
     */
    static <T extends Tensor> void advanceTogether(List<Run<T>> runs, Map<Run<T>, DiffusionSampler.RowWiseUpdate> updates,
            T latents, T outputs, TensorScope holder) {
        Run<T> first = runs.get(0);
        double[][] rows = new double[runs.size()][]; // a run is one image: one latent row
        for (int k = 0; k < rows.length; k++) {
            rows[k] = updates.get(runs.get(k)).coefficients();
        }
        // the runs keep their rows of the update's batch, which the next pass takes whole if they are its runs again
        SharedLatents<T> all = new SharedLatents<>(first.ops.attach(updates.get(first).rule().apply(first.ops, rows, latents,
                outputs), holder), runs.size());
        for (int k = 0; k < runs.size(); k++) {
            Run<T> r = runs.get(k);
            r.dropLatent();
            r.shared = all;
            r.sharedRow = k;
            r.stepped();
        }
    }

    /** A batch of latents that runs hold rows of; released when the last of them moves on. */
    private static final class SharedLatents<T extends Tensor> {
        final T batch;
        private int holders;

        SharedLatents(T batch, int holders) {
            this.batch = batch;
            this.holders = holders;
        }

        void release() {
            if (--holders == 0) {
                batch.close();
            }
        }
    }

    private void dropLatent() {
        if (x != null) {
            x.close();
            x = null;
        }
        if (shared != null) {
            shared.release();
            shared = null;
        }
    }

    private void stepped() {
        next++;
        if (next == info.totalSteps()) {
            state = State.DONE;
            releaseCache();
        }
    }

    void fail(RuntimeException e) {
        failure = e;
        state = State.FAILED;
        releaseCache();
    }

    private void releaseCache() {
        states.forEach(DeciderState::close);
    }

    /** Releases the run's cache, sampler state and latent. Idempotent. */
    @Override
    public void close() {
        if (state == State.CLOSED) {
            return;
        }
        state = State.CLOSED;
        releaseCache();
        dropLatent();
        stepper.close();
        scope.close();
        scheduler.closed(this);
    }
}
