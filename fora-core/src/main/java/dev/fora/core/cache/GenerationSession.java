package dev.fora.core.cache;

import dev.fora.core.model.DiTConfig;
import dev.fora.core.sampling.DenoisingModel;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.tensor.Tensor;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One generation (one batch of images) under one cache policy: owns the
 * {@link FeatureCache}, the step counter, the policy's per-generation {@link CacheDecider}
 * and the {@link GenerationStats}.
 *
 * <p>Steps must run exactly once each, in order {@code 0, 1, ..., K-1}; running a step
 * twice, skipping one, running past the last one, or using a closed session is an
 * {@link IllegalStateException}. The input is checked against the model's config before a
 * step counts as run: a latent of the wrong shape or a label out of range is an
 * {@link IllegalArgumentException} that leaves the session at the same step, so the step can
 * be retried with good input. Closing the session releases every cached tensor. If a step
 * throws once it is running (inside the model or the cache), close the session: its cache
 * may be incomplete.
 *
 * <p>A session is a {@link DenoisingModel}, so a sampler drives it directly:
 * <pre>{@code
 * try (GenerationSession<T> session = new CachedDiT<>(model).newSession(policy, schedule.steps())) {
 *     T image = sampler.sample(ops, session, latentShape, labels, noise);
 *     log(session.stats());
 * }
 * }</pre>
 *
 * @param <T> tensor type
 */
public final class GenerationSession<T extends Tensor> implements DenoisingModel<T>, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(GenerationSession.class);

    private final CachedDiT<T> dit;
    private final CachePolicy policy;
    private final int totalSteps;
    private final CacheDecider decider;
    private final Set<Signal> signals;
    private final FeatureCache<T> cache;
    private final GenerationStats stats;
    private int nextStep;
    private boolean closed;

    GenerationSession(CachedDiT<T> dit, CachePolicy policy, int totalSteps) {
        if (totalSteps < 1) {
            throw new IllegalArgumentException("a generation needs at least one step, got " + totalSteps);
        }
        DiTConfig config = dit.model().config();
        this.dit = dit;
        this.policy = policy;
        this.totalSteps = totalSteps;
        int history = policy.historyLength();
        if (history < 0) {
            throw new IllegalArgumentException("policy " + policy + " declares a negative historyLength: " + history);
        }
        this.signals = policy.signals().isEmpty() ? EnumSet.noneOf(Signal.class) : EnumSet.copyOf(policy.signals());
        this.decider = policy.newSession(new GenerationInfo(totalSteps, config));
        this.cache = new FeatureCache<>(dit.model().ops(), config.depth(), history);
        this.stats = new GenerationStats(totalSteps, config);
    }

    /**
     * Runs the cached forward pass of sampler step {@code step}.
     *
     * @param step the sampler step, must be the next one ({@code 0} first)
     * @param x latent {@code [N, C, H, W]}
     * @param timestep the original diffusion timestep, fed to the model for every sample
     * @param labels class label per sample
     * @return model output {@code [N, outC, H, W]} in the caller's current scope
     * @throws IllegalArgumentException if {@code x} is not {@code [labels.length, C, H, W]} for
     *     the model's config, a label is outside {@code 0..nullLabel}, or the timestep is not
     *     finite; the step is then not consumed (the session stays at the same step)
     * @throws IllegalStateException if the session is closed or {@code step} is not the next step
     */
    public T forward(int step, T x, double timestep, int[] labels) {
        checkStep(step);
        checkInput(x, timestep, labels);
        nextStep = step + 1;
        stats.startStep(step);
        float[] timesteps = new float[labels.length];
        Arrays.fill(timesteps, (float) timestep);
        T out = dit.forward(this, step, timestep, x, timesteps, labels);
        stats.updatePeakCacheBytes(cache.peakBytes());
        if (LOG.isTraceEnabled()) {
            LOG.trace("step {} (t={}): cache {} bytes", step, timestep, cache.currentBytes());
        }
        return out;
    }

    /** Runs {@link #forward} for a sampler step; the sampler's step count must match the session's. */
    @Override
    public T predict(SamplingStep step, T x, int[] labels) {
        if (step.totalSteps() != totalSteps) {
            throw new IllegalStateException("the sampler runs " + step.totalSteps() + " steps but this session was opened for "
                    + totalSteps);
        }
        return forward(step.index(), x, step.timestep(), labels);
    }

    private void checkStep(int step) {
        if (closed) {
            throw new IllegalStateException("generation session is closed; open a new session for step " + step);
        }
        if (nextStep == totalSteps) {
            throw new IllegalStateException("all " + totalSteps + " steps of this session have run; step " + step
                    + " is past the end");
        }
        if (step < nextStep) {
            throw new IllegalStateException("step " + step + " has already run; the next step is " + nextStep);
        }
        if (step != nextStep) {
            throw new IllegalStateException("step " + step + " requested but step " + nextStep
                    + " has not run; steps must run in order 0.." + (totalSteps - 1));
        }
    }

    /** Checks the input against the model config before the step counts as run. */
    private void checkInput(T x, double timestep, int[] labels) {
        if (labels == null || labels.length == 0) {
            throw new IllegalArgumentException("at least one label is needed");
        }
        DiTConfig c = dit.model().config();
        long[] shape = x.shape();
        long[] want = {labels.length, c.inChannels(), c.inputSize(), c.inputSize()};
        if (!Arrays.equals(shape, want)) {
            throw new IllegalArgumentException("latent shape " + Arrays.toString(shape) + " does not match the model and "
                    + labels.length + " label(s): expected " + Arrays.toString(want)
                    + " ([batch = labels, in_channels, input_size, input_size])");
        }
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 || labels[i] > c.nullLabel()) {
                throw new IllegalArgumentException("label " + labels[i] + " at position " + i + " is out of range: 0.."
                        + (c.numClasses() - 1) + " or the null class " + c.nullLabel());
            }
        }
        if (!Double.isFinite(timestep)) {
            throw new IllegalArgumentException("timestep must be finite, got " + timestep);
        }
    }

    /** The policy of this generation. */
    public CachePolicy policy() {
        return policy;
    }

    /** Number of sampler steps {@code K}. */
    public int totalSteps() {
        return totalSteps;
    }

    /** The next step to run ({@code totalSteps()} when done). */
    public int nextStep() {
        return nextStep;
    }

    /** The statistics so far (live view; still readable after close). */
    public GenerationStats stats() {
        return stats;
    }

    /** The feature cache (for inspection: bytes, computed steps). */
    public FeatureCache<T> cache() {
        return cache;
    }

    /** Whether the session is closed. */
    public boolean isClosed() {
        return closed;
    }

    CacheDecider decider() {
        return decider;
    }

    boolean measures(Signal signal) {
        return signals.contains(signal);
    }

    /** Releases the cache. Idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            cache.close();
            LOG.debug("generation with policy {} finished: {}", policy, stats);
        }
    }
}
