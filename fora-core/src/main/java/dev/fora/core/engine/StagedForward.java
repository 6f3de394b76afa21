package dev.fora.core.engine;

import dev.fora.core.cache.BlockRange;
import dev.fora.core.cache.Decision;
import dev.fora.core.cache.Measurement;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.DiTModel;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.Modulation;
import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * One model pass through the stages, in the order of {@link DiTModel#forward} (so deciders that
 * always compute reproduce it bit for bit). Per block and branch it asks each decider, computes
 * the rows that compute as one sub-batch, takes reused and forecast rows from each decider's own
 * slots, and adds every row through its gate; deciders that skip a block range rejoin at its end.
 * Rows never mix across deciders, so a row's output does not depend on what else is in the batch.
 * While a decider skips, its rows of the running tokens hold filler (whatever the blocks make of
 * them); its tokens wait aside and go back in when it rejoins, one op instead of two per branch.
 *
 * @param <T> tensor type
 */
final class StagedForward<T extends Tensor> {

    private final PassLayout<T> layout;
    private final DiTModel<T> model;
    private final TensorOps<T> ops;
    private final DiTConfig config;
    private final List<DeciderState<T>> states;
    private final Measuring<T> measuring;
    /** The decisions made before the pass ([feature][decider]), or null to ask as the pass goes. */
    private final Decision[][] predecided;
    private final List<BlockRange> ranges;

    private T h;
    private final int[] resumeAt;
    private final Map<BlockRange, T> rangeInputs = new LinkedHashMap<>();
    private final Map<BlockRange, boolean[]> rangeComputed = new LinkedHashMap<>();
    private final Map<T, Integer> holds = new IdentityHashMap<>();
    /** The tokens of deciders that skipped a range, until they rejoin. */
    private final List<Parked<T>> parked = new ArrayList<>();

    /** Batch rows {@code rows}' tokens from block {@code resume} on. */
    private record Parked<T>(int[] rows, T tokens, int resume) {
    }

    StagedForward(PassLayout<T> layout, Decision[][] predecided) {
        this.layout = layout;
        this.model = layout.model;
        this.ops = layout.ops;
        this.config = model.config();
        this.states = layout.states;
        this.measuring = new Measuring<>(layout);
        this.predecided = predecided;
        this.resumeAt = new int[states.size()];
        TreeSet<BlockRange> all = new TreeSet<>((a, b) -> a.from() != b.from() ? Integer.compare(a.from(), b.from())
                : Integer.compare(a.to(), b.to()));
        for (DeciderState<T> s : states) {
            all.addAll(s.declarations.ranges);
        }
        this.ranges = List.copyOf(all);
    }

    /** The model output of the pass, in the caller's current scope. */
    T run(T x, float[] timesteps, Conditioning conditioning) {
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
            Embedding<T> e = model.embed(x, timesteps, conditioning);
            List<Modulation<T>> mods = model.modulations(e);
            h = e.tokens();
            for (int b = 0; b < config.depth(); b++) {
                rejoin(b);
                boolean[] active = new boolean[states.size()];
                for (int u = 0; u < active.length; u++) {
                    active[u] = resumeAt[u] <= b;
                }
                for (BlockRange r : ranges) {
                    if (r.from() == b) {
                        startRange(r, active);
                    }
                }
                if (indices(active).size() > 0) {
                    runBlock(b, mods.get(b), e, active);
                }
                for (BlockRange r : ranges) {
                    if (r.to() == b + 1) {
                        endRange(r);
                    }
                }
            }
            rejoin(config.depth());
            return ops.attach(model.finalLayer(h, e), outer);
        }
    }

    /** Puts back the tokens of the deciders that rejoin at block {@code b} (the depth: before the final layer). */
    private void rejoin(int b) {
        for (Iterator<Parked<T>> it = parked.iterator(); it.hasNext();) {
            Parked<T> p = it.next();
            if (p.resume() == b) {
                it.remove();
                T next = ops.replaceRows(h, p.rows(), p.tokens());
                p.tokens().close();
                advance(next);
            }
        }
    }

    private void runBlock(int b, Modulation<T> m, Embedding<T> e, boolean[] active) {
        Measurement mi = Measurement.modulatedInputChange(b);
        List<Integer> measuringInput = measuring.declaring(mi, indices(active));
        if (!measuringInput.isEmpty()) {
            measuring.change(mi, model.modulatedInput(b, h, m), measuringInput);
        }
        Decision[] first = decide(b, 0, active);
        skipRanges(b, first, active);
        List<Integer> running = indices(active);
        if (running.isEmpty()) {
            return;
        }
        List<Integer> measuringResidual = measuring.declaring(Measurement.residualChange(b), running);
        T blockInput = null;
        if (!measuringResidual.isEmpty()) {
            blockInput = h;
            hold(blockInput);
        }
        for (int i = 0; i < config.branches(); i++) {
            Decision[] decisions = i == 0 ? first : decide(b, i, active);
            for (Map.Entry<BlockRange, boolean[]> r : rangeComputed.entrySet()) {
                if (r.getKey().contains(b)) {
                    boolean[] computed = r.getValue();
                    for (int u = 0; u < computed.length; u++) {
                        computed[u] &= active[u] && decisions[u].kind() == Decision.Kind.COMPUTE;
                    }
                }
            }
            T next;
            try (Gathered<T> f = feature(b, i, m, e, decisions, active)) {
                next = model.addBranch(i, h, m, f.tensor());
            }
            advance(next);
        }
        if (blockInput != null) {
            measuring.change(Measurement.residualChange(b), ops.sub(h, blockInput), measuringResidual);
            release(blockInput);
        }
    }

    /** Each active decider's decision about (block, branch), made before the pass or asked now; null for the others. */
    private Decision[] decide(int block, int branch, boolean[] active) {
        Decision[] before = predecided == null ? null : predecided[config.feature(block, branch)];
        Decision[] out = new Decision[states.size()];
        for (int u = 0; u < out.length; u++) {
            if (before != null && before[u] != null) {
                out[u] = before[u];
            } else if (active[u]) {
                out[u] = Asking.ask(states.get(u), block, branch);
            }
        }
        return out;
    }

    /** Computes, reuses and forecasts one feature for every active decider; other rows hold filler the caller discards. */
    private Gathered<T> feature(int block, int branch, Modulation<T> m, Embedding<T> e, Decision[] decisions,
            boolean[] active) {
        int f = config.feature(block, branch);
        List<Integer> compute = new ArrayList<>();
        List<Integer> reuse = new ArrayList<>();
        Map<Decision, List<Integer>> forecasts = new LinkedHashMap<>();
        for (int u = 0; u < states.size(); u++) {
            if (!active[u]) {
                continue;
            }
            DeciderState<T> s = states.get(u);
            switch (decisions[u].kind()) {
                case COMPUTE -> compute.add(u);
                case REUSE -> reuse.add(u);
                case FORECAST -> forecasts.computeIfAbsent(decisions[u], d -> new ArrayList<>()).add(u);
                default -> throw new AssertionError(decisions[u]);
            }
            s.stats.record(s.step.step(), s.index, f, decisions[u].kind());
        }
        if (layout.isWholeBatch(compute)) {
            T value = model.branch(block, branch, h, m, e);
            int[] rows = layout.rowsOf(compute);
            measuring.computed(f, block, branch, value, rows, compute);
            return new Gathered<>(value, !layout.store(f, compute, rows, value));
        }
        if (layout.isWholeBatch(reuse)) {
            return layout.gather(layout.rowsOf(reuse), s -> s.slot(f, 0));
        }
        if (forecasts.size() == 1 && layout.isWholeBatch(forecasts.values().iterator().next())) {
            Map.Entry<Decision, List<Integer>> only = forecasts.entrySet().iterator().next();
            return forecast(f, only.getKey(), only.getValue());
        }
        List<T> parts = new ArrayList<>();
        List<T> owned = new ArrayList<>();
        int[] order = new int[layout.rows];
        int offset = 0;
        if (!compute.isEmpty()) {
            int[] rows = layout.rowsOf(compute);
            T computed;
            TensorScope here = ops.currentScope();
            try (TensorScope gathered = ops.openScope()) {
                computed = ops.attach(model.branch(block, branch, ops.gatherRows(h, rows), rowsOf(m, rows), rowsOf(e, rows)),
                        here);
            }
            measuring.computed(f, block, branch, computed, rows, compute);
            if (!layout.store(f, compute, rows, computed)) {
                owned.add(computed);
            }
            parts.add(computed);
            offset = place(order, rows, offset);
        }
        if (!reuse.isEmpty()) {
            int[] rows = layout.rowsOf(reuse);
            offset = add(layout.gather(rows, s -> s.slot(f, 0)), parts, owned, order, rows, offset);
        }
        for (Map.Entry<Decision, List<Integer>> g : forecasts.entrySet()) {
            int[] rows = layout.rowsOf(g.getValue());
            offset = add(forecast(f, g.getKey(), g.getValue()), parts, owned, order, rows, offset);
        }
        T value;
        try (T all = ops.concatBatch(parts)) {
            value = ops.gatherRows(all, order);
        }
        owned.forEach(Tensor::close);
        return new Gathered<>(value, true);
    }

    private static <T extends Tensor> int add(Gathered<T> part, List<T> parts, List<T> owned, int[] order, int[] rows,
            int offset) {
        parts.add(part.tensor());
        if (part.owned()) {
            owned.add(part.tensor());
        }
        return place(order, rows, offset);
    }

    /** A decision's linear combination of the group's cached values, at the group's rows. */
    private Gathered<T> forecast(int feature, Decision decision, List<Integer> group) {
        return layout.forecast(feature, decision.coefficients(), layout.rowsOf(group));
    }

    /** Applies the REUSE_RESIDUAL decisions: those deciders add their cached residual and skip to the range's end. */
    private void skipRanges(int b, Decision[] decisions, boolean[] active) {
        Map<Integer, List<Integer>> byEnd = new TreeMap<>();
        for (int u = 0; u < decisions.length; u++) {
            if (active[u] && decisions[u].kind() == Decision.Kind.REUSE_RESIDUAL) {
                byEnd.computeIfAbsent(decisions[u].toBlock(), k -> new ArrayList<>()).add(u);
            }
        }
        for (Map.Entry<Integer, List<Integer>> g : byEnd.entrySet()) {
            BlockRange range = new BlockRange(b, g.getKey());
            int[] rows = layout.rowsOf(g.getValue());
            try (Gathered<T> residual = layout.gather(rows, s -> s.residual(range))) {
                if (layout.isWholeBatch(g.getValue())) {
                    advance(ops.add(h, residual.tensor()));
                } else {
                    try (T hRows = ops.gatherRows(h, rows)) {
                        parked.add(new Parked<>(rows, ops.add(hRows, residual.tensor()), range.to()));
                    }
                }
            }
            for (int u : g.getValue()) {
                DeciderState<T> s = states.get(u);
                active[u] = false;
                resumeAt[u] = range.to();
                s.stats.recordResidualReuse(s.step.step(), s.index, range);
                for (boolean[] computed : rangeComputed.values()) {
                    computed[u] = false;
                }
            }
        }
    }

    private void startRange(BlockRange r, boolean[] active) {
        rangeInputs.put(r, h);
        hold(h);
        boolean[] computed = new boolean[states.size()];
        for (int u = 0; u < computed.length; u++) {
            computed[u] = active[u] && states.get(u).declarations.keeps(r);
        }
        rangeComputed.put(r, computed);
    }

    /** At the end of a range: stores the residual of the deciders that computed all of it, measures its magnitude. */
    private void endRange(BlockRange r) {
        List<Integer> computed = indices(rangeComputed.remove(r));
        T input = rangeInputs.remove(r);
        if (!computed.isEmpty()) {
            int[] rows = layout.rowsOf(computed);
            T delta = ops.sub(h, input);
            if (!layout.isWholeBatch(computed)) {
                T theirs = ops.gatherRows(delta, rows);
                delta.close();
                delta = theirs;
            }
            Measurement magnitude = Measurement.residualMagnitude(r);
            List<Integer> measured = measuring.declaring(magnitude, computed);
            if (!measured.isEmpty()) {
                measuring.magnitude(magnitude, delta, rows, measured);
            }
            layout.keepResidual(r, computed, rows, delta);
        }
        release(input);
    }

    private Modulation<T> rowsOf(Modulation<T> m, int[] rows) {
        List<T> vectors = new ArrayList<>(m.vectors().size());
        for (T v : m.vectors()) {
            vectors.add(ops.gatherRows(v, rows));
        }
        return new Modulation<>(vectors);
    }

    /** The embedding rows a branch may read: conditioning and cross-attention context (not the tokens). */
    private Embedding<T> rowsOf(Embedding<T> e, int[] rows) {
        return new Embedding<>(null, ops.gatherRows(e.conditioning(), rows),
                e.context() == null ? null : ops.gatherRows(e.context(), rows),
                e.contextMask() == null ? null : ops.gatherRows(e.contextMask(), rows));
    }

    /** Records that rows {@code rows} sit at {@code offset...} of the parts' concatenation. */
    private static int place(int[] order, int[] rows, int offset) {
        for (int i = 0; i < rows.length; i++) {
            order[rows[i]] = offset + i;
        }
        return offset + rows.length;
    }

    private static List<Integer> indices(boolean[] flags) {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < flags.length; i++) {
            if (flags[i]) {
                out.add(i);
            }
        }
        return out;
    }

    // ---- the running tokens: a tensor held as a range's (or block's) input outlives its turn ----

    private void hold(T t) {
        holds.merge(t, 1, Integer::sum);
    }

    /** Drops one hold of {@code t}; closes it when nothing holds it and it is not the running tokens. */
    private void release(T t) {
        Integer n = holds.get(t);
        if (n == null || n == 1) {
            holds.remove(t);
            if (t != h) {
                t.close();
            }
        } else {
            holds.put(t, n - 1);
        }
    }

    /** Makes {@code next} the running tokens, closing the old ones unless held. */
    private void advance(T next) {
        T old = h;
        h = next;
        if (old != next && !holds.containsKey(old)) {
            old.close();
        }
    }
}
