package dev.fora.core.engine;

import dev.fora.core.cache.Decision;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.FusedSteps;
import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * One model pass over the rows of any deciders, each at its own step: one fused call when every
 * decision of the pass is the same, else the stages. Its static helpers begin, decide and end a
 * step of any deciders.
 *
 * <p>A pass may be fused only when every decider's policy measures nothing and skips no block
 * range, so that every decision can be made before the pass: then a pass where every row
 * computes every feature is one full call (its features kept stacked), and one where every row
 * reuses, or forecasts with the same coefficients, every feature is one cached call. So is one
 * where each decider reuses or forecasts every feature alike, with coefficients of its own; and,
 * on a model that {@linkplain FusedSteps#splits() splits}, one where some deciders compute every
 * feature beside those (the computing rows first), in one split call; and on a model that
 * {@linkplain FusedSteps#masks() masks}, one where every decider decides each feature alike but
 * the features differ (a per-block schedule's mixed step), in one masked call. A pass of deciders
 * that decide from the first block (First-Block-Cache) takes the model's
 * {@linkplain FusedSteps#spans() head and tail calls} where it has them ({@link HeadTailForward}).
 *
 * @param <T> tensor type
 */
final class ModelPass<T extends Tensor> {

    private final PassLayout<T> layout;
    private final TensorOps<T> ops;
    private final DiTConfig config;
    /** The model's fused steps when this pass may use them, else null. */
    private final FusedSteps<T> fused;
    /** The model's head and tail calls when this pass may use them for its measuring deciders, else null. */
    private final FusedSteps<T> spans;

    ModelPass(PassLayout<T> layout, FusedSteps<T> fused) {
        this.layout = layout;
        this.ops = layout.ops;
        this.config = layout.model.config();
        this.fused = fused != null && layout.states.stream().allMatch(s -> s.declarations.fusable()) ? fused : null;
        this.spans = fused != null && fused.spans() && HeadTailForward.fits(layout.states, config) ? fused : null;
    }

    /**
     * Whether this pass runs as a {@link HeadTailForward} (its deciders decide from the first block,
     * the model has head and tail calls) given these decisions made before it.
     */
    boolean headTail(Decision[][] predecided) {
        return spans != null && predecided == null;
    }

    /** Begins this pass as a {@link HeadTailForward}: its tails then wait for a call ({@link #headTail}). */
    HeadTailForward<T>.Begun beginHeadTail(T x, float[] timesteps, Conditioning conditioning) {
        return new HeadTailForward<>(layout, spans).begin(x, timesteps, conditioning);
    }

    /** Whether this pass's fused call can carry another pass's tails ({@link FusedSteps#carriesTails()}). */
    boolean carriesTails() {
        return fused != null && fused.carriesTails();
    }

    /** Whether this pass may take the fused call (the model has one and every policy allows it). */
    boolean fusable() {
        return fused != null;
    }

    /** Starts a step of these deciders: measurements of the last one are dropped, each decider is told. */
    static <T extends Tensor> void begin(List<DeciderState<T>> states) {
        for (DeciderState<T> s : states) {
            s.values.clear();
            Asking.tell(s, () -> s.decider.beginStep(s.step));
        }
    }

    /** Every decision of a step made before it runs ([feature][decider]): for policies that measure nothing. */
    static <T extends Tensor> Decision[][] decide(List<DeciderState<T>> states, DiTConfig config) {
        Decision[][] decisions = new Decision[config.features()][states.size()];
        for (int b = 0; b < config.depth(); b++) {
            for (int i = 0; i < config.branches(); i++) {
                for (int u = 0; u < states.size(); u++) {
                    decisions[config.feature(b, i)][u] = Asking.ask(states.get(u), b, i);
                }
            }
        }
        return decisions;
    }

    /**
     * The model output of the pass {@code [rows, outC, H, W]}, in the caller's current scope.
     *
     * @param predecided the decisions made before the pass ({@link #decide}), or null to ask as the
     *     stages go; a fusable pass whose decisions are all the same is one fused call
     */
    T run(T x, float[] timesteps, Conditioning conditioning, Decision[][] predecided) {
        return run(x, timesteps, conditioning, predecided, null);
    }

    /**
     * {@link #run(Tensor, float[], Conditioning, Decision[][])}, ending {@code riding} (a head-tail
     * pass begun before, or null) too: its tails ride along this pass's call when it is one split
     * call that can carry them, else they take calls of their own.
     */
    T run(T x, float[] timesteps, Conditioning conditioning, Decision[][] predecided, HeadTailForward<T>.Begun riding) {
        if (riding != null) {
            T out = carriesTails() && predecided != null ? carrying(x, timesteps, conditioning, predecided, riding) : null;
            if (out != null) {
                return out;
            }
            riding.endAlone();
        }
        Decision uniform = fused != null && predecided != null ? uniform(predecided) : null;
        if (uniform == null) {
            int fullRows = fused != null && predecided != null ? fullRows(predecided) : -1;
            Map<Decision, List<Integer>> byDecision = fullRows >= 0 ? cachedPerDecider(predecided, fullRows) : null;
            if (byDecision == null) {
                Decision[] alike = fused != null && predecided != null && fused.masks() ? alikePerFeature(predecided) : null;
                if (alike != null) {
                    return masked(x, timesteps, conditioning, alike);
                }
                return headTail(predecided) ? new HeadTailForward<>(layout, spans).run(x, timesteps, conditioning)
                        : new StagedForward<>(layout, predecided).run(x, timesteps, conditioning);
            }
            return fullRows == 0 ? cached(x, timesteps, conditioning, byDecision)
                    : split(x, timesteps, conditioning, fullRows, byDecision);
        }
        for (DeciderState<T> s : layout.states) {
            recordWholeStep(s, uniform.kind());
        }
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
            T out;
            if (uniform.kind() == Decision.Kind.COMPUTE && layout.states.stream().allMatch(s -> s.historyLength() == 0)) {
                out = fused.uncached(x, timesteps, conditioning); // nothing to keep: no features gathered
            } else if (uniform.kind() == Decision.Kind.COMPUTE) {
                // the stack this step replaces, when nothing reads it any more, takes the new features
                List<DeciderState<T>> keeping = new ArrayList<>();
                T into = layout.reclaimStack(() -> keeping.addAll(evictForStack(layout.states)));
                FusedSteps.Full<T> full = into == null ? fused.full(x, timesteps, conditioning)
                        : fused.full(x, timesteps, conditioning, into);
                keepStacked(full.features(), keeping);
                out = full.output();
            } else {
                out = fused.cached(x, timesteps, conditioning, stackedSlots(uniform), uniform.coefficients());
            }
            return ops.attach(out, outer);
        }
    }

    /**
     * This pass as one split call that carries {@code riding}'s tails and ends it; null (nothing
     * done) when the pass is not one split call: every decider must compute every feature, or reuse
     * or forecast every feature ({@link #cachedPerDecider}), the computing ones first.
     */
    private T carrying(T x, float[] timesteps, Conditioning conditioning, Decision[][] predecided,
            HeadTailForward<T>.Begun riding) {
        Decision uniform = uniform(predecided);
        int fullRows = uniform != null ? (uniform.kind() == Decision.Kind.COMPUTE ? layout.rows : 0) : fullRows(predecided);
        Map<Decision, List<Integer>> groups = uniform != null || fullRows < 0 ? null : cachedPerDecider(predecided, fullRows);
        if (uniform == null && groups == null) {
            return null;
        }
        List<DeciderState<T>> computing = recordSplit(fullRows, groups);
        if (groups == null && uniform.kind() != Decision.Kind.COMPUTE) {
            layout.states.forEach(s -> recordWholeStep(s, uniform.kind()));
        }
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
            List<T> slots;
            double[] coefficients;
            if (groups != null) {
                slots = List.of(combinedStack(groups));
                coefficients = new double[] {1.0};
            } else if (uniform.kind() == Decision.Kind.COMPUTE) {
                slots = List.of(ops.fromFloats(new long[] {config.features(), 0, config.tokens(), config.hiddenSize()},
                        new float[0]));
                coefficients = new double[] {1.0};
            } else {
                slots = stackedSlots(uniform);
                coefficients = uniform.coefficients();
            }
            FusedSteps.SplitWithTails<T> step = fused.splitWithTails(x, timesteps, conditioning, fullRows, slots, coefficients,
                    riding.tails());
            storeStacked(step.features(), computing);
            riding.end(step.tailOutput(), step.tailTokens());
            return ops.attach(step.output(), outer);
        }
    }

    /**
     * How many leading batch rows belong to deciders that compute every feature, when the model
     * runs them beside cached rows in one call ({@link FusedSteps#splits()}) and no other decider
     * computes anything; 0 when none compute; -1 when the pass cannot be split so.
     */
    private int fullRows(Decision[][] decisions) {
        int rows = 0;
        for (int u = 0; u < layout.states.size(); u++) {
            if (decisions[0][u] == null || decisions[0][u].kind() != Decision.Kind.COMPUTE) {
                continue;
            }
            if (uniformFor(decisions, u) == null) {
                return -1;
            }
            rows += layout.states.get(u).batchRows.length;
        }
        if (rows == 0) {
            return 0;
        }
        if (rows == layout.rows || !fused.splits()) {
            return -1;
        }
        for (int u = 0; u < layout.states.size(); u++) {
            boolean full = decisions[0][u] != null && decisions[0][u].kind() == Decision.Kind.COMPUTE;
            for (int r : layout.states.get(u).batchRows) {
                if (full != r < rows) {
                    return -1;
                }
            }
        }
        return rows;
    }

    /**
     * The deciders of the batch rows from {@code firstRow} on, grouped by their decision when each
     * reuses or forecasts every feature alike but not all alike, with each group's rows contiguous
     * and the groups in batch order, and the cache holds 4-byte floats; else null. A 2-byte
     * (bfloat16) cache would round each combined forecast to 8 bits of mantissa before the call,
     * where the model's own call keeps the terms apart: such a cache keeps a call per decision.
     */
    private Map<Decision, List<Integer>> cachedPerDecider(Decision[][] decisions, int firstRow) {
        Map<Decision, List<Integer>> groups = new LinkedHashMap<>();
        for (int u = 0; u < layout.states.size(); u++) {
            if (layout.states.get(u).batchRows[0] < firstRow) {
                continue;
            }
            Decision d = uniformFor(decisions, u);
            if (d == null || d.kind() == Decision.Kind.COMPUTE || d.kind() == Decision.Kind.REUSE_RESIDUAL) {
                return null;
            }
            if (!combinesInFloat32(layout.states.get(u))) {
                return null;
            }
            groups.computeIfAbsent(d, k -> new ArrayList<>()).add(u);
        }
        int next = firstRow;
        for (List<Integer> g : groups.values()) {
            for (int r : layout.rowsOf(g)) {
                if (r != next++) {
                    return null;
                }
            }
        }
        return next == layout.rows ? groups : null;
    }

    /**
     * Whether this decider's cached values are 4-byte floats, which a forecast may be combined
     * from before the fused call (false when it holds none: the staged pass reports that).
     */
    static boolean combinesInFloat32(DeciderState<?> s) {
        Rows<?> value = s.slot(0, 0);
        return value != null && value.source().tensor().sizeInBytes() == 4 * value.source().tensor().size();
    }

    /**
     * A cached step of deciders that reuse or forecast with different coefficients, in one fused
     * call: each group's forecast is combined here, and the call reuses the combined values. On a
     * model whose calls cost more than their arithmetic, this saves a call per extra decision. The
     * values are combined from the stacks fused steps stored when every decider has them (an op
     * per stack and term); else feature by feature, which a model that
     * {@linkplain FusedSteps#masks() masks} takes one per feature, others stacked.
     */
    private T cached(T x, float[] timesteps, Conditioning conditioning, Map<Decision, List<Integer>> groups) {
        for (Map.Entry<Decision, List<Integer>> g : groups.entrySet()) {
            for (int u : g.getValue()) {
                recordWholeStep(layout.states.get(u), g.getKey().kind());
            }
        }
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
            T out;
            Gathered<T> stack = stackedCombination(groups); // released with this scope
            if (stack != null) {
                out = fused.cached(x, timesteps, conditioning, List.of(stack.tensor()), new double[] {1.0});
            } else if (fused.masks()) {
                List<T> values = combinedFeatures(groups, new ArrayList<>()); // released with this scope
                int[] terms = new int[values.size()];
                double[] ones = new double[values.size()];
                Arrays.fill(terms, 1);
                Arrays.fill(ones, 1.0);
                FusedSteps.Full<T> step = fused.masked(x, timesteps, conditioning, terms, values, ones);
                step.features().close();
                out = step.output();
            } else {
                out = fused.cached(x, timesteps, conditioning, List.of(combinedStack(groups)), new double[] {1.0});
            }
            return ops.attach(out, outer);
        }
    }

    /**
     * Every feature of the groups' rows as each group's decision takes it, stacked
     * {@code [features, rows, T, D]}, combined from the stacks fused steps stored: an op per stack
     * and term rather than per feature and group. Null when a decider's values are not all in
     * such stacks (a staged or masked step stored them).
     */
    private Gathered<T> stackedCombination(Map<Decision, List<Integer>> groups) {
        List<Gathered<T>> parts = new ArrayList<>(groups.size());
        try {
            for (Map.Entry<Decision, List<Integer>> g : groups.entrySet()) {
                Decision d = g.getKey();
                int[] rows = layout.rowsOf(g.getValue());
                int n = d.kind() == Decision.Kind.REUSE ? 1 : d.coefficients().length;
                List<Gathered<T>> terms = new ArrayList<>(n);
                try {
                    for (int j = 0; j < n; j++) {
                        Gathered<T> term = layout.gatherStacked(rows, j);
                        if (term == null) {
                            return null;
                        }
                        terms.add(term);
                    }
                    parts.add(d.kind() == Decision.Kind.REUSE ? terms.remove(0)
                            : new Gathered<>(ops.linearCombination(d.coefficients(), tensors(terms)), true));
                } finally {
                    terms.forEach(Gathered::close);
                }
            }
            return parts.size() == 1 ? parts.remove(0) : new Gathered<>(ops.concatChannels(tensors(parts)), true);
        } finally {
            parts.forEach(Gathered::close);
        }
    }

    private static <T extends Tensor> List<T> tensors(List<Gathered<T>> gathered) {
        return gathered.stream().map(Gathered::tensor).toList();
    }

    /**
     * Every feature of the groups' rows as each group's decision takes it, stacked
     * {@code [features, rows, T, D]}, in the current scope: from the stacks where every decider has
     * them ({@link #stackedCombination}), else feature by feature.
     */
    private T combinedStack(Map<Decision, List<Integer>> groups) {
        Gathered<T> fromStacks = stackedCombination(groups);
        if (fromStacks != null) {
            return fromStacks.tensor(); // made in this scope, or the cache's own
        }
        List<Gathered<T>> made = new ArrayList<>();
        T stacked = ops.stack(combinedFeatures(groups, made));
        made.forEach(Gathered::close);
        return stacked;
    }

    /**
     * Every feature of the groups' rows as each group's decision takes it, one {@code [rows, T, D]}
     * tensor per feature in forward order; what was made for them goes to {@code made}, to close
     * once they are used (the rest are the cache's own).
     */
    private List<T> combinedFeatures(Map<Decision, List<Integer>> groups, List<Gathered<T>> made) {
        List<T> features = new ArrayList<>(config.features());
        for (int f = 0; f < config.features(); f++) {
            List<Gathered<T>> group = new ArrayList<>(groups.size());
            for (Map.Entry<Decision, List<Integer>> g : groups.entrySet()) {
                group.add(combined(f, g.getKey(), layout.rowsOf(g.getValue())));
            }
            made.addAll(group);
            if (group.size() == 1) {
                features.add(group.get(0).tensor());
            } else {
                T all = ops.concatBatch(group.stream().map(Gathered::tensor).toList());
                made.add(new Gathered<>(all, true));
                features.add(all);
            }
        }
        return features;
    }

    /**
     * A step where the deciders of the first {@code fullRows} rows compute every feature and the
     * others reuse or forecast (grouped by decision), in one split call; the full rows' features
     * go to their deciders' caches.
     */
    private T split(T x, float[] timesteps, Conditioning conditioning, int fullRows, Map<Decision, List<Integer>> groups) {
        List<DeciderState<T>> computing = recordSplit(fullRows, groups);
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
            FusedSteps.Full<T> full = fused.split(x, timesteps, conditioning, fullRows, List.of(combinedStack(groups)),
                    new double[] {1.0});
            storeStacked(full.features(), computing);
            return ops.attach(full.output(), outer);
        }
    }

    /**
     * Records a split step's decisions: the deciders of the first {@code fullRows} rows compute
     * every feature, each group (when not null) takes every feature as its decision. Returns the
     * computing deciders.
     */
    private List<DeciderState<T>> recordSplit(int fullRows, Map<Decision, List<Integer>> groups) {
        List<DeciderState<T>> computing = new ArrayList<>();
        for (DeciderState<T> s : layout.states) {
            if (s.batchRows[0] < fullRows) {
                computing.add(s);
                recordWholeStep(s, Decision.Kind.COMPUTE);
            }
        }
        if (groups != null) {
            groups.forEach((d, g) -> g.forEach(u -> recordWholeStep(layout.states.get(u), d.kind())));
        }
        return computing;
    }

    /**
     * Each feature's decision when every decider made the same one for it, each a compute, a reuse
     * or a forecast; else null.
     */
    private static Decision[] alikePerFeature(Decision[][] decisions) {
        Decision[] alike = new Decision[decisions.length];
        for (int f = 0; f < decisions.length; f++) {
            Decision first = decisions[f][0];
            if (first == null || first.kind() == Decision.Kind.REUSE_RESIDUAL) {
                return null;
            }
            for (Decision d : decisions[f]) {
                if (!first.equals(d)) {
                    return null;
                }
            }
            alike[f] = first;
        }
        return alike;
    }

    /**
     * A step where every decider computes some features and reuses or forecasts the others, all
     * alike, in one masked call (a per-block schedule's mixed step); the computed features go to
     * the deciders' caches.
     */
    private T masked(T x, float[] timesteps, Conditioning conditioning, Decision[] perFeature) {
        int[] all = layout.allRows();
        int[] terms = new int[perFeature.length];
        List<Integer> computed = new ArrayList<>();
        List<Gathered<T>> values = new ArrayList<>();
        List<Double> coefficients = new ArrayList<>();
        for (int f = 0; f < perFeature.length; f++) {
            int feature = f;
            Decision d = perFeature[f];
            for (DeciderState<T> s : layout.states) {
                s.stats.record(s.step.step(), s.index, f, d.kind());
            }
            if (d.kind() == Decision.Kind.COMPUTE) {
                computed.add(f);
                continue;
            }
            double[] c = d.kind() == Decision.Kind.REUSE ? new double[] {1.0} : d.coefficients();
            terms[f] = c.length;
            for (int j = 0; j < c.length; j++) {
                int slot = j;
                values.add(layout.gather(all, s -> s.slot(feature, slot)));
                coefficients.add(c[j]);
            }
        }
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
            FusedSteps.Full<T> step;
            try {
                step = fused.masked(x, timesteps, conditioning, terms, values.stream().map(Gathered::tensor).toList(),
                        coefficients.stream().mapToDouble(Double::doubleValue).toArray());
            } finally {
                values.forEach(Gathered::close);
            }
            List<Integer> everyDecider = IntStream.range(0, layout.states.size()).boxed().toList();
            List<T> features = ops.unstack(step.features());
            step.features().close();
            for (int k = 0; k < computed.size(); k++) {
                if (!layout.store(computed.get(k), everyDecider, all, features.get(k))) {
                    features.get(k).close();
                }
            }
            return ops.attach(step.output(), outer);
        }
    }

    /** Counts a step in which this decider took every feature the same way. */
    private void recordWholeStep(DeciderState<T> s, Decision.Kind kind) {
        for (int f = 0; f < config.features(); f++) {
            s.stats.record(s.step.step(), s.index, f, kind);
        }
    }

    /** Feature {@code f} of these rows as their decision takes it: the reused slot, or the forecast's combination. */
    private Gathered<T> combined(int f, Decision decision, int[] rows) {
        return decision.kind() == Decision.Kind.REUSE ? layout.gather(rows, s -> s.slot(f, 0))
                : layout.forecast(f, decision.coefficients(), rows);
    }

    /** Ends a step of these deciders: each is told its step is complete. */
    static <T extends Tensor> void end(List<DeciderState<T>> states) {
        for (DeciderState<T> s : states) {
            Asking.tell(s, () -> s.decider.endStep(DeciderContext.endOf(s)));
        }
    }

    /** The decision decider {@code u} made for every feature, or null if they differ (or it has none yet). */
    private static Decision uniformFor(Decision[][] decisions, int u) {
        Decision first = decisions[0][u];
        for (Decision[] feature : decisions) {
            if (first == null || !first.equals(feature[u])) {
                return null;
            }
        }
        return first;
    }

    /** The decision every decider made for every feature, or null if they differ. */
    static Decision uniform(Decision[][] decisions) {
        Decision first = decisions[0][0];
        for (Decision[] feature : decisions) {
            for (Decision d : feature) {
                if (!d.equals(first)) {
                    return null;
                }
            }
        }
        return first;
    }

    /**
     * Makes room in the caches of those of these deciders that keep values for the stack a full
     * step brings them; returns those deciders.
     */
    private List<DeciderState<T>> evictForStack(List<DeciderState<T>> computing) {
        List<DeciderState<T>> keeping = new ArrayList<>();
        for (DeciderState<T> s : computing) {
            if (s.historyLength() > 0) {
                for (int f = 0; f < config.features(); f++) {
                    s.evict(f, s.step.step());
                }
                s.evictStacked();
                keeping.add(s);
            }
        }
        return keeping;
    }

    /**
     * Stores features {@code [features, rows, T, D]} computed for these deciders, whose batch rows
     * are the stack's first rows, for those of them that keep values.
     */
    private void storeStacked(T all, List<DeciderState<T>> computing) {
        keepStacked(all, evictForStack(computing));
    }

    /** Stores a stack of features for the deciders {@link #evictForStack} made room for (none: it is closed). */
    private void keepStacked(T all, List<DeciderState<T>> keeping) {
        if (keeping.isEmpty()) {
            all.close();
            return;
        }
        Shared<T> stack = layout.share(all, false);
        List<Shared<T>> features = new ArrayList<>(config.features());
        for (T view : ops.unstack(stack.tensor())) {
            features.add(layout.share(view, true));
        }
        stack.viewedThrough(features);
        for (DeciderState<T> s : keeping) {
            List<Rows<T>> values = new ArrayList<>(features.size());
            for (Shared<T> f : features) {
                values.add(f.rows(s.batchRows));
            }
            s.putAll(s.step.step(), values, stack.rows(s.batchRows));
        }
    }

    /** The stacked slots a REUSE or FORECAST decision combines: the cache's own when they are whole, else stacked anew. */
    private List<T> stackedSlots(Decision decision) {
        int n = decision.coefficients().length;
        List<T> slots = new ArrayList<>(n);
        for (int j = 0; j < n; j++) {
            T whole = wholeStack(j);
            slots.add(whole != null ? whole : stackSlot(j));
        }
        return slots;
    }

    /** The stacked tensor holding slot {@code j} of every decider, when it is exactly this batch in order. */
    private T wholeStack(int j) {
        Shared<T> source = null;
        for (DeciderState<T> s : layout.states) {
            Rows<T> rows = s.stacked(j);
            if (rows == null || (source != null && rows.source() != source)) {
                return null;
            }
            source = rows.source();
            for (int k = 0; k < rows.at().length; k++) {
                if (rows.at()[k] != s.batchRows[k]) {
                    return null;
                }
            }
        }
        return source != null && source.tensor().shape()[1] == layout.rows ? source.tensor() : null;
    }

    /** Slot {@code j} of every feature, gathered in batch order and stacked, in the current scope. */
    private T stackSlot(int j) {
        int[] all = layout.allRows();
        List<Gathered<T>> features = new ArrayList<>(config.features());
        List<T> tensors = new ArrayList<>(config.features());
        for (int f = 0; f < config.features(); f++) {
            int feature = f;
            Gathered<T> g = layout.gather(all, s -> s.slot(feature, j));
            features.add(g);
            tensors.add(g.tensor());
        }
        T stacked = ops.stack(tensors);
        features.forEach(Gathered::close);
        return stacked;
    }
}
