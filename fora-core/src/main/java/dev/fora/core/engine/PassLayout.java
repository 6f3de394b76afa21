package dev.fora.core.engine;

import dev.fora.core.cache.BlockRange;
import dev.fora.core.model.DiTModel;
import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

/**
 * Where the deciders of one pass sit in its batch, and the moves between the batch and their
 * cached rows: gathering a group's values in batch order, and handing computed rows to the cache.
 * A group's rows are always taken in ascending batch order, so a group that is the whole batch
 * is the batch itself.
 *
 * @param <T> tensor type
 */
final class PassLayout<T extends Tensor> {

    final DiTModel<T> model;
    final TensorOps<T> ops;
    final List<DeciderState<T>> states;
    final int rows;
    private final CacheMemory<T> memory;
    /** Per batch row: the decider it belongs to, and its index among that decider's rows. */
    private final int[] owner;
    private final int[] indexInOwner;

    PassLayout(DiTModel<T> model, List<DeciderState<T>> states, int rows, CacheMemory<T> memory) {
        this.model = model;
        this.ops = model.ops();
        this.states = states;
        this.rows = rows;
        this.memory = memory;
        this.owner = new int[rows];
        this.indexInOwner = new int[rows];
        Arrays.fill(owner, -1);
        for (int u = 0; u < states.size(); u++) {
            int[] at = states.get(u).batchRows;
            for (int k = 0; k < at.length; k++) {
                if (owner[at[k]] >= 0) {
                    throw new IllegalArgumentException("batch row " + at[k] + " belongs to two deciders");
                }
                owner[at[k]] = u;
                indexInOwner[at[k]] = k;
            }
        }
        for (int r = 0; r < rows; r++) {
            if (owner[r] < 0) {
                throw new IllegalArgumentException("batch row " + r + " belongs to no decider");
            }
        }
    }

    /** The batch rows of a group of deciders (indices into {@link #states}), ascending. */
    int[] rowsOf(List<Integer> group) {
        int n = 0;
        for (int u : group) {
            n += states.get(u).batchRows.length;
        }
        int[] out = new int[n];
        int k = 0;
        for (int u : group) {
            for (int r : states.get(u).batchRows) {
                out[k++] = r;
            }
        }
        Arrays.sort(out);
        return out;
    }

    /** Every batch row, in order. */
    int[] allRows() {
        int[] all = new int[rows];
        for (int r = 0; r < rows; r++) {
            all[r] = r;
        }
        return all;
    }

    boolean isWholeBatch(List<Integer> group) {
        return group.size() == states.size();
    }

    /** Each decider's held rows (by {@code held}), laid out at the group's batch rows, ascending. */
    Gathered<T> gather(int[] groupRows, Function<DeciderState<T>, Rows<T>> held) {
        int[] at = new int[groupRows.length];
        return Gathered.of(ops, sources(groupRows, held, at), at);
    }

    /**
     * Slot {@code j} of every feature at the group's batch rows, {@code [features, rows, T, D]},
     * taken from the stacks fused steps stored (an op per stack, not per feature); null when a
     * decider of the group has no such stack.
     */
    Gathered<T> gatherStacked(int[] groupRows, int j) {
        int[] at = new int[groupRows.length];
        List<T> sources = sources(groupRows, s -> s.stacked(j), at);
        return sources == null ? null : Gathered.ofStacks(ops, sources, at);
    }

    /** The tensor holding each group row's value (by {@code held}), its row there into {@code at}; null if one holds none. */
    private List<T> sources(int[] groupRows, Function<DeciderState<T>, Rows<T>> held, int[] at) {
        List<T> sources = new ArrayList<>(groupRows.length);
        for (int p = 0; p < groupRows.length; p++) {
            int r = groupRows[p];
            Rows<T> value = held.apply(states.get(owner[r]));
            if (value == null) {
                return null;
            }
            sources.add(value.source().tensor());
            at[p] = value.at()[indexInOwner[r]];
        }
        return sources;
    }

    /** {@code sum_j coefficients[j] * slot j} of feature {@code feature}, at these rows (a forecast). */
    Gathered<T> forecast(int feature, double[] coefficients, int[] groupRows) {
        List<Gathered<T>> terms = new ArrayList<>(coefficients.length);
        List<T> tensors = new ArrayList<>(coefficients.length);
        for (int j = 0; j < coefficients.length; j++) {
            int slot = j;
            Gathered<T> term = gather(groupRows, s -> s.slot(feature, slot));
            terms.add(term);
            tensors.add(term.tensor());
        }
        T value = ops.linearCombination(coefficients, tensors);
        terms.forEach(Gathered::close);
        return new Gathered<>(value, true);
    }

    /** For each decider of {@code group}, the positions of its rows in a tensor holding {@code groupRows}. */
    int[] positionsIn(int[] groupRows, DeciderState<T> s) {
        return positions(groupRows, s.batchRows);
    }

    /** The position of each of {@code rows} in a tensor holding {@code heldRows} (ascending, containing them). */
    static int[] positions(int[] heldRows, int[] rows) {
        int[] out = new int[rows.length];
        for (int k = 0; k < out.length; k++) {
            out[k] = Arrays.binarySearch(heldRows, rows[k]);
        }
        return out;
    }

    /**
     * Hands {@code value} (the rows {@code groupRows}) to the cache of the deciders {@code group}
     * that keep values of {@code feature}. Each first makes room, then the value is counted.
     *
     * @return whether the cache took the value (else the caller still owns it)
     */
    boolean store(int feature, List<Integer> group, int[] groupRows, T value) {
        List<DeciderState<T>> keeping = new ArrayList<>();
        for (int u : group) {
            DeciderState<T> s = states.get(u);
            if (s.historyLength() > 0) {
                s.evict(feature, s.step.step());
                keeping.add(s);
            }
        }
        if (keeping.isEmpty()) {
            return false;
        }
        Shared<T> shared = share(value, true);
        for (DeciderState<T> s : keeping) {
            s.put(feature, s.step.step(), shared.rows(positionsIn(groupRows, s)));
        }
        return true;
    }

    /**
     * Keeps {@code delta} (the rows {@code groupRows}) as the residual of {@code range} of the
     * deciders {@code group}, computed at their steps; each first releases its previous one. Takes
     * {@code delta}.
     */
    void keepResidual(BlockRange range, List<Integer> group, int[] groupRows, T delta) {
        for (int u : group) {
            states.get(u).evictResidual(range);
        }
        Shared<T> shared = share(delta, true);
        for (int u : group) {
            DeciderState<T> s = states.get(u);
            s.setResidual(range, s.step.step(), shared.rows(positionsIn(groupRows, s)));
        }
    }

    /** A cached tensor made from {@code value}, which moves into the cache's scope. */
    Shared<T> share(T value, boolean counted) {
        return memory.share(value, counted);
    }

    /** {@link CacheMemory#reclaimStack}. */
    T reclaimStack(Runnable eviction) {
        return memory.reclaimStack(eviction);
    }
}
