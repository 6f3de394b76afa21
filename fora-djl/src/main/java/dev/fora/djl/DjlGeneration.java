package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.CachedDiT;
import dev.fora.core.cache.GenerationSession;
import dev.fora.core.cache.GenerationStats;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.SamplingStep;

/**
 * The low-level API: the cached model for a sampler loop you already have. Call
 * {@link #predict} (or {@link #predictGuided}) once per step, steps {@code 0..K-1} in order,
 * then close the session.
 *
 * <p>Memory: the feature cache lives in this session and is released by {@link #close()};
 * everything else a step creates is released before the step returns. The returned output
 * is attached to the manager of the latent you pass in, so it lives as long as your step's
 * arrays do.
 *
 * <p>A session is used from one thread at a time; open one session per concurrent generation
 * (they share the loaded model).
 */
public final class DjlGenerationSession implements AutoCloseable {

    private final TorchScriptDiT dit;
    private final GenerationSession<NDTensor> session;
    private boolean closed;

    DjlGenerationSession(TorchScriptDiT dit, CachePolicy policy, int totalSteps) {
        this.dit = dit;
        try {
            this.session = new CachedDiT<>(dit).newSession(policy, totalSteps);
        } catch (RuntimeException e) {
            dit.close();
            throw e;
        }
    }

    /**
     * The cached model output for sampler step {@code step}.
     *
     * @param step sampler step, {@code 0} (noisiest) to {@code K-1}, each exactly once, in order
     * @param x latent {@code [N, C, H, W]} float32 (not modified, not closed)
     * @param timestep the ORIGINAL diffusion timestep of this step (e.g. 999 first), fed to every sample
     * @param labels class label per sample ({@code 0..numClasses-1}, or the null class for the
     *     unconditional half of a batch you guide yourself)
     * @return {@code [N, outChannels, H, W]} (eps, then the variance value with learned sigma),
     *     attached to {@code x}'s manager
     * @throws IllegalArgumentException for a latent of the wrong shape or labels out of range
     * @throws IllegalStateException if the session is closed or the step is out of order
     */
    public NDArray predict(int step, NDArray x, double timestep, int[] labels) {
        checkOpen(step);
        NDArrayOps ops = dit.ops();
        NDTensor in = ops.wrap(x);
        dit.checkLatent(in, labels.length);
        dit.checkLabels(labels, true);
        NDTensor out = session.forward(step, in, timestep, labels);
        return handOver(out, x.getManager());
    }

    /**
     * Like {@link #predict} with classifier-free guidance as DiT does it: the model runs once
     * on {@code [x; x]} with labels {@code [labels; null]} and the result is
     * {@code eps_u + s (eps_c - eps_u)} on the eps channels, the variance value of the
     * conditional half. Cond and uncond share one cache schedule, as in FORA.
     *
     * @param cfgScale guidance scale {@code s}
     * @return {@code [N, outChannels, H, W]} attached to {@code x}'s manager
     */
    public NDArray predictGuided(int step, NDArray x, double timestep, int[] labels, double cfgScale) {
        checkOpen(step);
        NDArrayOps ops = dit.ops();
        NDTensor in = ops.wrap(x);
        dit.checkLatent(in, labels.length);
        dit.checkLabels(labels, false);
        ClassifierFreeGuidance<NDTensor> cfg = new ClassifierFreeGuidance<>(ops, session, cfgScale,
                dit.config().nullLabel());
        NDTensor out = cfg.predict(new SamplingStep(step, session.totalSteps(), timestep), in, labels);
        return handOver(out, x.getManager());
    }

    private NDArray handOver(NDTensor out, NDManager target) {
        NDArray a = out.array();
        a.attach(target);
        return a;
    }

    private void checkOpen(int step) {
        if (closed) {
            throw new IllegalStateException("this generation session is closed; open a new one for step " + step);
        }
    }

    /** Number of sampler steps {@code K} the session was opened for. */
    public int totalSteps() {
        return session.totalSteps();
    }

    /** The next step to run. */
    public int nextStep() {
        return session.nextStep();
    }

    /** What the cache did so far (readable after close). */
    public GenerationStats stats() {
        return session.stats();
    }

    /** The TorchScript calls made so far. */
    public TorchScriptCalls calls() {
        return dit.calls();
    }

    /** Bytes the feature cache holds now (0 after close). */
    public long cacheBytes() {
        return session.cache().currentBytes();
    }

    /** The manager that owns everything this session holds (its root); for inspection. */
    public NDManager manager() {
        return dit.ops().rootManager();
    }

    /** Whether {@link #close()} was called. */
    public boolean isClosed() {
        return closed;
    }

    /** Releases the cache and every array the session still holds. Idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            try {
                session.close();
            } finally {
                dit.close();
            }
        }
    }
}
