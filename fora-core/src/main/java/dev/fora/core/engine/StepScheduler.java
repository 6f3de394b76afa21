package dev.fora.core.engine;

import dev.fora.core.cache.CachePolicy;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTModel;
import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.NonFiniteOutputException;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * Runs model passes over any set of {@link Run}s of one model, each at its own step: the rows of
 * every run go through the model together, each run's deciders decide for its rows alone, its
 * rows are computed, reused or forecast from its own cache slots, and then its own guidance and
 * sampler take its rows. Runs join by being given to a pass and leave when done or closed, so a
 * caller can add and drop runs between passes (continuous batching). A lockstep batch is the
 * case where every run is at the same step; {@link Generation} serves a sampler loop of your own.
 *
 * <p>Passes where every decision is the same take the model's fused call (see
 * {@link dev.fora.core.model.FusedSteps}), whatever steps the runs are at. One scheduler is used
 * from one thread at a time; it owns the cache memory of its runs.
 *
 * @param <T> tensor type
 */
public final class StepScheduler<T extends Tensor> implements AutoCloseable {

    private final DiTModel<T> model;
    private final TensorOps<T> ops;
    private final CacheMemory<T> memory;
    private final boolean fusedSteps;
    private final Set<Run<T>> open = new LinkedHashSet<>();
    private boolean closed;

    /** @param fusedSteps whether uniform passes use the model's fused call */
    public StepScheduler(DiTModel<T> model, boolean fusedSteps) {
        this.model = Objects.requireNonNull(model, "model");
        this.ops = model.ops();
        this.memory = new CacheMemory<>(ops);
        this.fusedSteps = fusedSteps;
    }

    /** A scheduler whose uniform passes use the model's fused call. */
    public StepScheduler(DiTModel<T> model) {
        this(model, true);
    }

    DiTModel<T> model() {
        return model;
    }

    /** Describes a new run of this scheduler's model under {@code policy}, sampled by {@code sampler}. */
    public Run.Builder<T> newRun(CachePolicy policy, DiffusionSampler sampler) {
        checkOpen();
        return new Run.Builder<>(this, policy, sampler);
    }

    void opened(Run<T> run) {
        open.add(run);
    }

    void closed(Run<T> run) {
        open.remove(run);
    }

    /**
     * One model pass over the running runs among {@code runs}, each at its own next step; each
     * advances one step. A run whose output is not finite fails alone.
     *
     * @throws IllegalArgumentException if a run belongs to another scheduler or is listed twice
     */
    public void pass(List<Run<T>> runs) {
        checkOpen();
        List<Run<T>> running = new ArrayList<>();
        for (Run<T> r : runs) {
            if (!open.contains(r)) {
                throw new IllegalArgumentException("a run of another scheduler, or a closed run, was given to this pass");
            }
            if (running.contains(r)) {
                throw new IllegalArgumentException("a run was given twice to one pass");
            }
            if (r.state() == Run.State.RUNNING) {
                running.add(r);
            }
        }
        if (running.isEmpty()) {
            return;
        }
        List<DeciderState<T>> states = new ArrayList<>();
        List<SamplingStep> steps = new ArrayList<>(running.size());
        int rows = 0;
        for (Run<T> r : running) {
            SamplingStep step = r.stepToRun();
            steps.add(step);
            r.place(rows, step);
            states.addAll(r.states);
            rows += r.rowCount();
        }
        ModelPass<T> pass = new ModelPass<>(new PassLayout<>(model, states, rows, memory),
                fusedSteps ? model.fusedSteps().orElse(null) : null);
        try (TensorScope scope = ops.openScope()) {
            List<T> inputs = new ArrayList<>(running.size());
            Conditioning conditioning = null;
            float[] timesteps = new float[rows];
            int at = 0;
            for (int i = 0; i < running.size(); i++) {
                Run<T> r = running.get(i);
                inputs.add(r.inputRows());
                conditioning = conditioning == null ? r.rows : conditioning.concat(r.rows);
                for (int k = 0; k < r.rowCount(); k++) {
                    timesteps[at++] = (float) steps.get(i).timestep();
                }
            }
            T x = inputs.size() == 1 ? inputs.get(0) : ops.concatBatch(inputs);
            pass.begin();
            T out = pass.run(x, timesteps, conditioning);
            pass.end();
            at = 0;
            for (int i = 0; i < running.size(); i++) {
                Run<T> r = running.get(i);
                int n = r.rowCount();
                T mine = ops.sliceBatch(out, at, at + n);
                at += n;
                try {
                    if (r.checkFinite) {
                        int first = at - n;
                        NonFiniteOutputException.check(ops, mine, steps.get(i),
                                row -> (row == 0 ? "the image" : "the unconditional half") + " (batch row " + (first + row) + ")");
                    }
                    r.advance(steps.get(i), mine);
                } catch (NonFiniteOutputException e) {
                    r.fail(e);
                }
            }
        }
    }

    /** Bytes the cache of every run holds now. */
    public long cacheBytes() {
        return memory.current();
    }

    /** The most bytes the cache has held. */
    public long peakCacheBytes() {
        return memory.peak();
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the scheduler is closed");
        }
    }

    /** Closes every open run and releases the cache. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        for (Run<T> r : new ArrayList<>(open)) {
            r.close();
        }
        closed = true;
        memory.close();
    }
}
