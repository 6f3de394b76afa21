package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.fora.core.engine.GenerationStats;
import dev.fora.core.model.Conditioning;
import dev.fora.core.sampling.SamplingStep;
import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The low-level API: the cached model for a sampler loop you already have. Open one with
 * {@link DiTPipeline#openGeneration}, call {@link #predict} (or {@link #predictGuided}) once
 * per step, steps {@code 0..K-1} in order, then close it.
 *
 * <p>Memory: the feature cache lives in this generation and is released by {@link #close()};
 * everything else a step creates is released before the step returns. The returned output
 * is attached to the manager of the latent you pass in, so it lives as long as your step's
 * arrays do. A generation that is never closed is released when the garbage collector finds
 * it unreachable (with a warning naming where it was opened): a bounded leak, not a lasting one.
 *
 * <p>Checks: each step's output is checked for NaN and infinity (a
 * {@link dev.fora.core.sampling.NonFiniteOutputException} naming the step and image); the
 * timestep must lie in the model's training schedule {@code [0, train_steps)}.
 *
 * <p>A generation is used from one thread at a time; open one per concurrent generation
 * (they share the loaded model). {@link #close()} may come from another thread: it waits for
 * a step in flight to return, then frees; later steps fail with an {@link IllegalStateException}.
 */
public final class DjlGeneration implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(DjlGeneration.class);
    private static final Cleaner CLEANER = Cleaner.create();

    private final TorchScriptModel dit;
    private final int guidedChannels;
    private final RunPath.Cached generation;
    private final CloseGuard pipeline;
    private final CloseGuard uses = new CloseGuard("this generation");
    private final int trainSteps;
    private final Unclosed unclosed;
    private final Cleaner.Cleanable cleanable;

    DjlGeneration(TorchScriptModel dit, int guidedChannels, RunPath.Cached generation, CloseGuard pipeline,
            int trainSteps) {
        this.dit = dit;
        this.guidedChannels = guidedChannels;
        this.generation = generation;
        this.pipeline = pipeline;
        this.trainSteps = trainSteps;
        this.unclosed = new Unclosed(dit.ops().rootManager(), pipeline, "policy " + generation.policy() + ", "
                + generation.info().totalSteps() + " steps, " + generation.info().images() + " image(s), opened on thread "
                + Thread.currentThread().getName());
        this.cleanable = CLEANER.register(this, unclosed);
    }

    /**
     * Releases the native memory of a generation that became unreachable without
     * {@link #close()}. Holds no reference to the generation (or the cleaner could never run).
     */
    private static final class Unclosed implements Runnable {
        private final NDManager root;
        private final CloseGuard pipeline;
        private final String description;
        /** Where the generation was opened, for the warning (a stack walk per generation: cheap beside its steps). */
        private final Throwable openedAt = new Throwable("the unclosed DjlGeneration was opened here");
        private volatile boolean closed;

        Unclosed(NDManager root, CloseGuard pipeline, String description) {
            this.root = root;
            this.pipeline = pipeline;
            this.description = description;
        }

        @Override
        public void run() {
            if (closed) {
                return;
            }
            LOG.warn("a DjlGeneration ({}) was not closed; releasing its native memory now that it is unreachable. "
                    + "Close generations (try-with-resources).", description, openedAt);
            try {
                pipeline.enter();
            } catch (IllegalStateException e) {
                return; // the pipeline is closed: it has freed everything under it
            }
            try {
                root.close();
            } finally {
                pipeline.exit();
            }
        }
    }

    /**
     * The cached model output for one step, without guidance (a generation opened with
     * {@code guided = false}).
     *
     * @param step the step: {@link SamplingStep#of(dev.fora.core.sampling.DiffusionSchedule, int)}
     *     gives it with its timestep; each step exactly once, in order
     * @param x latent {@code [images, C, H, W]} float32 (not modified, not closed)
     * @param conditioning one row per image (class labels may include the null class if you
     *     build a guidance batch yourself)
     * @return {@code [images, outChannels, H, W]} (eps, then the variance value with learned
     *     sigma), attached to {@code x}'s manager
     * @throws IllegalArgumentException for a latent, conditioning or timestep that does not fit;
     *     the step is not used up
     * @throws IllegalStateException if the generation or pipeline is closed, the generation is
     *     guided, or the step is out of order
     * @throws dev.fora.core.sampling.NonFiniteOutputException if the output holds NaN or
     *     infinity (e.g. a NaN latent); the step has run
     */
    public NDArray predict(SamplingStep step, NDArray x, Conditioning conditioning) {
        return use(step, false, () -> {
            NDTensor in = dit.ops().wrap(x);
            dit.checkLatent(in, conditioning.size());
            return handOver(generation.model().predict(step, in, conditioning), x.getManager());
        });
    }

    /**
     * Like {@link #predict} with classifier-free guidance as DiT does it (a generation opened
     * with {@code guided = true}): the model runs once on {@code [x; x]} with
     * {@code [conditioning; null]} and the result is {@code eps_u + s (eps_c - eps_u)} on the
     * leading eps channels the model directory names ({@code guidance.guided_channels}: DiT's
     * official checkpoints guide 3 of 4), the other channels and the variance value of the
     * conditional half. The unconditional half is the null class, or for PixArt-α the null caption
     * under each prompt's token mask. Each image's two halves share one cache decision, as in FORA.
     *
     * @param cfgScale guidance scale {@code s}, finite, {@code >= 0} and not 1 (1 is no guidance: open an unguided generation)
     * @return {@code [images, outChannels, H, W]} attached to {@code x}'s manager
     */
    public NDArray predictGuided(SamplingStep step, NDArray x, Conditioning conditioning, double cfgScale) {
        return use(step, true, () -> {
            if (cfgScale == 1.0) {
                throw new IllegalArgumentException("cfgScale 1 runs no unconditional half; open the generation with guided = "
                        + "false");
            }
            NDTensor in = dit.ops().wrap(x);
            dit.checkLatent(in, conditioning.size());
            dit.config().conditioning().check(conditioning, conditioning.size(), false);
            return handOver(RunPath.guided(dit, generation.model(), cfgScale, guidedChannels).predict(step, in, conditioning),
                    x.getManager());
        });
    }

    /**
     * Runs one step's work as a use of this generation and of the pipeline, so that neither is
     * freed under it, after the checks that need no model.
     */
    private NDArray use(SamplingStep step, boolean guided, Supplier<NDArray> work) {
        uses.enter();
        try {
            pipeline.enter();
            try {
                checkCall(step, guided);
                return work.get();
            } finally {
                pipeline.exit();
            }
        } finally {
            uses.exit();
            Reference.reachabilityFence(this); // else the cleaner may free the memory the step uses
        }
    }

    private NDArray handOver(NDTensor out, NDManager target) {
        NDArray a = out.array();
        a.attach(target);
        return a;
    }

    private void checkCall(SamplingStep step, boolean guided) {
        if (generation.info().guided() != guided) {
            throw new IllegalStateException("this generation was opened " + (guided ? "without" : "with")
                    + " guidance; call " + (guided ? "predict" : "predictGuided"));
        }
        double t = step.timestep();
        if (!(t >= 0 && t < trainSteps)) { // also NaN
            throw new IllegalArgumentException("timestep " + t + " of step " + step.step() + " is outside the model's "
                    + "training schedule [0, " + trainSteps + "); use SamplingStep.of(pipeline.schedule(K), step)");
        }
    }

    /** Number of sampler steps {@code K} the generation was opened for. */
    public int totalSteps() {
        return generation.info().totalSteps();
    }

    /** The next step to run. */
    public int nextStep() {
        return generation.nextStep();
    }

    /** What the cache did so far (readable after close). */
    public GenerationStats stats() {
        return generation.stats();
    }

    /** The TorchScript calls made so far. */
    public TorchScriptCalls calls() {
        return dit.calls();
    }

    /** Bytes the feature cache holds now (0 after close). */
    public long cacheBytes() {
        return generation.cacheBytes();
    }

    /** The manager that owns everything this generation holds (its root); for inspection. */
    public NDManager manager() {
        return dit.ops().rootManager();
    }

    /** Whether {@link #close()} was called. */
    public boolean isClosed() {
        return uses.isClosed();
    }

    /**
     * Releases the cache and every array the generation still holds, after waiting for a step
     * in flight on another thread. Idempotent.
     */
    @Override
    public void close() {
        if (!uses.close(() -> { })) {
            return;
        }
        unclosed.closed = true;
        cleanable.clean();
        try {
            pipeline.enter();
        } catch (IllegalStateException e) {
            return; // the pipeline is closed: it has freed everything under it
        }
        try {
            generation.close();
            dit.close();
        } finally {
            pipeline.exit();
        }
    }
}
