package dev.fora.core.engine;

import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.Decision;
import dev.fora.core.model.Conditioning;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.model.DiTModel;
import dev.fora.core.model.FusedSteps;
import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.NonFiniteOutputException;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Stream;

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
    /** Holds the batches of latents that runs updated together keep rows of. */
    private final TensorScope sharedLatents;
    private final boolean fusedSteps;
    private final Set<Run<T>> open = new LinkedHashSet<>();
    private boolean closed;

    /** @param fusedSteps whether uniform passes use the model's fused call */
    public StepScheduler(DiTModel<T> model, boolean fusedSteps) {
        this.model = Objects.requireNonNull(model, "model");
        this.ops = model.ops();
        this.memory = new CacheMemory<>(ops);
        this.sharedLatents = ops.newDetachedScope();
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
     * Runs the next step of every running run among {@code runs}, each at its own step; each
     * advances one step, but for a run {@linkplain Run.Builder#startInPhase started in phase}
     * that waits for its first step. A run whose output is not finite, or whose policy throws (or
     * answers what its cache cannot carry out), fails alone: its rows compute for the rest of the
     * pass and the other runs go on.
     *
     * <p>Runs whose policies decide before the step (they measure nothing) are decided first: those
     * whose decisions are uniform share one fused call per kind of decision: all that compute, and
     * all that reuse or forecast (each run's forecast combined with its own coefficients); both in
     * one call where the model {@linkplain FusedSteps#splits() splits} its rows so. The
     * rest, and the runs whose policies measure (asked as the stages go), share one staged pass;
     * when those all decide from the first block (First-Block-Cache), it is a head call and tails
     * that ride along another group's call where the model carries them. Either way a run's rows
     * never mix with another's.
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
        holdBack(running);
        if (running.isEmpty()) {
            return;
        }
        Map<Run<T>, SamplingStep> steps = new LinkedHashMap<>();
        List<DeciderState<T>> all = new ArrayList<>();
        for (Run<T> r : running) {
            SamplingStep step = r.stepToRun();
            steps.put(r, step);
            r.startStep(step);
            all.addAll(r.states);
        }
        FusedSteps<T> fused = fusedSteps ? model.fusedSteps().orElse(null) : null;
        ModelPass.begin(all);
        // groups of runs that share a model call, each with its runs' decisions (null: asked as the stages go)
        Map<Object, List<Run<T>>> groups = new LinkedHashMap<>();
        Map<Run<T>, Decision[][]> decisions = new LinkedHashMap<>();
        Object staged = new Object();
        // runs that reuse or forecast every feature share one cached call, those of one decision side by side
        // (with a float32 cache; else a call per decision)
        Object cached = new Object();
        Map<Decision, List<Run<T>>> byDecision = new LinkedHashMap<>();
        for (Run<T> r : running) {
            Object key = staged;
            if (fused != null && r.states.stream().allMatch(s -> s.declarations.fusable())) {
                Decision[][] d = ModelPass.decide(r.states, model.config());
                decisions.put(r, d);
                Decision uniform = ModelPass.uniform(d);
                key = uniform == null ? staged : uniform.kind() == Decision.Kind.COMPUTE ? uniform
                        : r.states.stream().allMatch(ModelPass::combinesInFloat32) ? cached : uniform;
            }
            RuntimeException failure = Asking.failure(r.states);
            if (failure != null) {
                r.fail(failure); // its policy threw before the model ran: it leaves this pass
                continue;
            }
            if (key == cached) {
                byDecision.computeIfAbsent(ModelPass.uniform(decisions.get(r)), k -> new ArrayList<>()).add(r);
            }
            groups.computeIfAbsent(key, k -> new ArrayList<>()).add(r);
        }
        if (groups.containsKey(cached)) {
            List<Run<T>> reusing = byDecision.values().stream().flatMap(List::stream).toList();
            List<Run<T>> computing = groups.get(Decision.COMPUTE);
            if (computing != null && fused.splits()) {
                // one split call: the computing runs' rows first, then the cached ones
                groups.remove(Decision.COMPUTE);
                reusing = Stream.concat(computing.stream(), reusing.stream()).toList();
            }
            groups.put(cached, reusing);
        }
        Map<Run<T>, BatchRow<T>> outputs = new LinkedHashMap<>();
        Map<Run<T>, BatchRow<T>> latents = new LinkedHashMap<>();
        try (TensorScope scope = ops.openScope()) {
            runAll(List.copyOf(groups.values()), steps, decisions, fused, outputs, latents);
            ModelPass.end(all);
            // runs whose samplers share a row-wise rule take one update together, each row at its own step
            Map<Object, List<Run<T>>> alike = new LinkedHashMap<>();
            Map<Run<T>, DiffusionSampler.RowWiseUpdate> updates = new LinkedHashMap<>();
            for (Map.Entry<Run<T>, BatchRow<T>> e : outputs.entrySet()) {
                Run<T> r = e.getKey();
                RuntimeException failure = Asking.failure(r.states);
                if (r.state() == Run.State.RUNNING && failure != null) {
                    r.fail(failure);
                } else if (r.state() == Run.State.RUNNING) {
                    DiffusionSampler.RowWiseUpdate update = r.rowWiseUpdate(steps.get(r)).orElse(null);
                    if (update != null) {
                        updates.put(r, update);
                    }
                    alike.computeIfAbsent(update != null ? update.rule() : r, k -> new ArrayList<>()).add(r);
                }
            }
            for (List<Run<T>> together : alike.values()) {
                Run<T> first = together.get(0);
                if (together.size() == 1) {
                    first.advance(steps.get(first), outputs.get(first).tensor(ops));
                } else {
                    Run.advanceTogether(together, updates, BatchRow.rows(ops, together, latents),
                            BatchRow.rows(ops, together, outputs), sharedLatents);
                }
            }
        }
    }

    /**
     * Takes the runs that wait for their first step out of this pass. A new run that may start
     * in phase gets its start here, once: the wait that leaves the fewest of its steps alone in
     * their kind (full or cached) among the runs already placed (those going or waiting, then the
     * new ones before it). If every run waits, they all start now.
     */
    private void holdBack(List<Run<T>> running) {
        List<Run<T>> placed = new ArrayList<>();
        for (Run<T> r : running) {
            if (r.startsIn >= 0) {
                placed.add(r);
            }
        }
        for (Run<T> r : running) {
            if (r.startsIn < 0) {
                r.startsIn = bestStart(r, placed);
                placed.add(r);
            }
        }
        if (running.stream().allMatch(r -> r.startsIn > 0)) {
            running.forEach(r -> r.startsIn = 0);
            return;
        }
        for (Iterator<Run<T>> it = running.iterator(); it.hasNext(); ) {
            Run<T> r = it.next();
            if (r.startsIn > 0) {
                r.startsIn--;
                it.remove();
            }
        }
    }

    /**
     * The wait, up to the run's limit, after which fewest of its steps are alone in their kind. A
     * step no other run shares counts as alone too, whether or not others run then: else waiting
     * until the others end would look best. Waits past the others' end are not tried.
     */
    private static int bestStart(Run<?> run, List<? extends Run<?>> placed) {
        if (run.fullSteps == null) {
            return 0;
        }
        int horizon = 0;
        for (Run<?> o : placed) {
            if (o.fullSteps != null) {
                horizon = Math.max(horizon, o.startsIn + o.totalSteps() - o.nextStep());
            }
        }
        int best = 0;
        int fewest = Integer.MAX_VALUE;
        for (int wait = 0; wait <= Math.min(run.startWithin, horizon); wait++) {
            int alone = 0;
            for (int t = 0; t < run.totalSteps(); t++) {
                boolean full = run.fullSteps.get(t);
                boolean shared = false;
                for (Run<?> o : placed) {
                    // the step o runs at pass wait + t from now
                    int s = o.nextStep() + wait + t - o.startsIn;
                    shared |= o.fullSteps != null && s >= o.nextStep() && s < o.totalSteps() && o.fullSteps.get(s) == full;
                }
                alone += shared ? 0 : 1;
            }
            if (alone < fewest) {
                fewest = alone;
                best = wait;
            }
        }
        return best;
    }

    /** A group of runs laid out for one model pass: its input rows and the decisions made before it. */
    private record Group<T extends Tensor>(List<Run<T>> runs, ModelPass<T> pass, T x, float[] timesteps,
            Conditioning conditioning, Decision[][] decisions) {
    }

    /**
     * The groups' model passes; each run's output rows go to {@code outputs}. A group of runs that
     * decide from the first block (First-Block-Cache) begins first, and its tails ride along the
     * first other group's call that can carry them.
     */
    private void runAll(List<List<Run<T>>> groups, Map<Run<T>, SamplingStep> steps, Map<Run<T>, Decision[][]> decided,
            FusedSteps<T> fused, Map<Run<T>, BatchRow<T>> outputs, Map<Run<T>, BatchRow<T>> latents) {
        List<Group<T>> laid = new ArrayList<>(groups.size());
        for (List<Run<T>> g : groups) {
            laid.add(layOut(g, steps, decided, fused, latents));
        }
        Group<T> headTail = laid.stream().filter(g -> g.pass().headTail(g.decisions())).findFirst().orElse(null);
        Group<T> carrier = headTail == null ? null
                : laid.stream().filter(g -> g != headTail && g.pass().carriesTails()).findFirst().orElse(null);
        HeadTailForward<T>.Begun begun = carrier == null ? null
                : headTail.pass().beginHeadTail(headTail.x(), headTail.timesteps(), headTail.conditioning());
        for (Group<T> g : laid) {
            if (g != headTail || begun == null) {
                T out = g.pass().run(g.x(), g.timesteps(), g.conditioning(), g.decisions(), g == carrier ? begun : null);
                finish(g, out, steps, outputs);
            }
        }
        if (begun != null) {
            finish(headTail, begun.output(), steps, outputs);
        }
    }

    private void finish(Group<T> g, T out, Map<Run<T>, SamplingStep> steps, Map<Run<T>, BatchRow<T>> outputs) {
        checkFinite(g.runs(), steps, out);
        guide(g.runs(), out, outputs);
    }

    /** Places a group's runs in one batch: the pass over them, its input rows, the decisions made before it. */
    private Group<T> layOut(List<Run<T>> group, Map<Run<T>, SamplingStep> steps, Map<Run<T>, Decision[][]> decided,
            FusedSteps<T> fused, Map<Run<T>, BatchRow<T>> latents) {
        List<DeciderState<T>> states = new ArrayList<>();
        Conditioning conditioning = null;
        int rows = 0;
        for (Run<T> r : group) {
            r.place(rows);
            states.addAll(r.states);
            conditioning = conditioning == null ? r.rows : conditioning.concat(r.rows);
            rows += r.rowCount();
        }
        float[] timesteps = new float[rows];
        int at = 0;
        for (Run<T> r : group) {
            for (int k = 0; k < r.rowCount(); k++) {
                timesteps[at++] = (float) steps.get(r).timestep();
            }
        }
        // decisions made before the pass; a run whose policy measures is asked as the stages go (null)
        Decision[][] decisions = null;
        if (group.stream().anyMatch(decided::containsKey)) {
            int features = model.config().features();
            decisions = new Decision[features][states.size()];
            int u = 0;
            for (Run<T> r : group) {
                Decision[][] d = decided.get(r);
                for (int k = 0; k < r.states.size(); k++, u++) {
                    for (int f = 0; f < features; f++) {
                        decisions[f][u] = d == null ? null : d[f][k];
                    }
                }
            }
        }
        ModelPass<T> pass = new ModelPass<>(new PassLayout<>(model, states, rows, memory), fused);
        return new Group<>(group, pass, input(group, rows, latents), timesteps, conditioning, decisions);
    }

    /**
     * The group's latents as the pass's input rows: a guided run's latent twice (conditional,
     * unconditional). Each run's latent is also recorded as a row of their concatenation, which
     * the sampler update borrows when it takes the same runs in the same order.
     */
    private T input(List<Run<T>> group, int rows, Map<Run<T>, BatchRow<T>> rowsOf) {
        int[] at = new int[rows];
        int k = 0;
        for (int i = 0; i < group.size(); i++) {
            for (int n = 0; n < group.get(i).rowCount(); n++) {
                at[k++] = i;
            }
        }
        Map<Run<T>, BatchRow<T>> own = new LinkedHashMap<>();
        group.forEach(r -> own.put(r, r.latentRow()));
        T all = BatchRow.rows(ops, group, own);
        for (int i = 0; i < group.size(); i++) {
            rowsOf.put(group.get(i), new BatchRow<>(all, i));
        }
        if (k == group.size()) {
            return all;
        }
        return k == 2 * group.size() ? ops.repeatRows(all, 2) : ops.gatherRows(all, at);
    }

    /** One reduction for the whole output; a run with a row that is not finite fails alone. */
    private void checkFinite(List<Run<T>> group, Map<Run<T>, SamplingStep> steps, T out) {
        if (group.stream().noneMatch(r -> r.checkFinite)) {
            return;
        }
        double[] sums = ops.rowAbsSums(out);
        int at = 0;
        for (Run<T> r : group) {
            for (int k = 0; k < r.rowCount(); k++) {
                if (r.checkFinite && r.state() == Run.State.RUNNING && !Double.isFinite(sums[at + k])) {
                    r.fail(new NonFiniteOutputException(steps.get(r), k, k == 0 ? "the image" : "its unconditional half"));
                }
            }
            at += r.rowCount();
        }
    }

    /**
     * Each run's model output after guidance, into {@code outputs}: unguided runs take their row;
     * guided runs with the same scale and guided channels are mixed together, in one go.
     */
    private void guide(List<Run<T>> group, T out, Map<Run<T>, BatchRow<T>> outputs) {
        Map<List<Double>, List<Integer>> mixes = new LinkedHashMap<>();
        int[] offsets = new int[group.size()];
        int at = 0;
        for (int i = 0; i < group.size(); i++) {
            Run<T> r = group.get(i);
            offsets[i] = at;
            if (r.info.guided()) {
                mixes.computeIfAbsent(List.of(r.cfgScale, (double) r.guidedChannels), k -> new ArrayList<>()).add(i);
            } else {
                outputs.put(r, new BatchRow<>(out, at));
            }
            at += r.rowCount();
        }
        for (Map.Entry<List<Double>, List<Integer>> m : mixes.entrySet()) {
            List<Integer> runs = m.getValue();
            int n = runs.size();
            int[] condRows = new int[n];
            int[] uncondRows = new int[n];
            for (int j = 0; j < n; j++) {
                condRows[j] = offsets[runs.get(j)];
                uncondRows[j] = condRows[j] + 1;
            }
            // when every row of the pass is in this mix, conditional and unconditional rows alternate
            boolean whole = 2 * n == at;
            T cond = whole ? ops.sliceBatch(out, 0, at, 2) : ops.gatherRows(out, condRows);
            T uncond = whole ? ops.sliceBatch(out, 1, at, 2) : ops.gatherRows(out, uncondRows);
            T mixed = ClassifierFreeGuidance.mix(ops, cond, uncond, m.getKey().get(1).intValue(), m.getKey().get(0));
            for (int j = 0; j < n; j++) {
                outputs.put(group.get(runs.get(j)), new BatchRow<>(mixed, j));
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
        sharedLatents.close();
        memory.close();
    }
}
