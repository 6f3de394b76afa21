package dev.fora.core.cache;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;

/**
 * The cached features of one generation. Per feature (block, branch) it keeps up to
 * {@code historyLength} whole-batch tensors, "slots": slot {@code j} holds, in each image's
 * rows, that image's {@code j}-th most recent computed value. Each image has its own list of
 * the steps those values were computed at, so images may compute at different steps. When
 * every image computes, the slots shift as whole tensors; when only some do, their rows move
 * down one slot and the new value takes their rows in slot 0. It also holds the previous
 * step's value of each declared {@link Measurement} (per image: the value at the last step the
 * image ran that block), and per declared {@link BlockRange} one residual per image
 * ({@code h_out(to-1) - h_in(from)} at the last step the image computed the whole range).
 *
 * <p>A fused full step stores every feature at once as one stacked tensor
 * ({@link #storeAllStacked}); its per-feature values are views of it, and the stacked tensor
 * stays at hand for fused cached steps ({@link #stacked}) until a staged store changes one of
 * the features of that slot.
 *
 * <p>The cache owns its tensors in a detached {@link TensorScope}: a value pushed out of the
 * history is released at once, and {@link #close()} releases everything. It counts its bytes
 * (current and peak): the bytes of its per-feature values (the stacked tensors they are views
 * of add nothing).
 *
 * @param <T> tensor type
 */
public final class FeatureCache<T extends Tensor> implements AutoCloseable {

    private final TensorOps<T> ops;
    private final int historyLength;
    private final int rows;
    private final TensorScope scope;
    private final Object[][] slots;
    private final Object[] stacked;
    private final int[][][] steps;
    private final int[][] counts;
    private final Map<Measurement, T> references = new HashMap<>();
    private final Map<Measurement, boolean[]> referenceUnits = new HashMap<>();
    private final Map<BlockRange, T> residuals = new HashMap<>();
    private final Map<BlockRange, int[]> residualSteps = new HashMap<>();
    private final int units;
    private long currentBytes;
    private long peakBytes;
    private boolean closed;

    /**
     * @param features number of (block, branch) features
     * @param historyLength computed values kept per feature and image, {@code >= 0}
     * @param units number of deciders (images, or CFG halves)
     * @param rows batch rows
     */
    FeatureCache(TensorOps<T> ops, int features, int historyLength, int units, int rows) {
        this(ops, features, historyLength, units, rows, Set.of());
    }

    /**
     * @param features number of (block, branch) features
     * @param historyLength computed values kept per feature and image, {@code >= 0}
     * @param units number of deciders (images, or CFG halves)
     * @param rows batch rows
     * @param ranges the block ranges whose residual is kept, one value per image
     */
    FeatureCache(TensorOps<T> ops, int features, int historyLength, int units, int rows, Set<BlockRange> ranges) {
        this.ops = ops;
        this.units = units;
        for (BlockRange r : ranges) {
            int[] none = new int[units];
            Arrays.fill(none, -1);
            residualSteps.put(r, none);
        }
        this.historyLength = historyLength;
        this.rows = rows;
        this.scope = ops.newDetachedScope();
        this.slots = new Object[features][historyLength];
        this.stacked = new Object[historyLength];
        this.steps = new int[features][units][historyLength];
        this.counts = new int[features][units];
    }

    /** Computed values kept per feature and image. */
    public int historyLength() {
        return historyLength;
    }

    /** The steps unit {@code unit}'s cached values of {@code feature} were computed at, most recent first. */
    public int[] computedSteps(int feature, int unit) {
        checkOpen();
        return Arrays.copyOf(steps[feature][unit], counts[feature][unit]);
    }

    int count(int feature, int unit) {
        return counts[feature][unit];
    }

    /** Slot {@code j} of a feature: the whole batch, the cache keeps ownership. */
    @SuppressWarnings("unchecked")
    T slot(int feature, int j) {
        checkOpen();
        return (T) slots[feature][j];
    }

    /**
     * Stores the values every unit computed at {@code step}: {@code value} is the whole batch in
     * row order. Takes ownership of it unless the history length is 0.
     *
     * @return whether the cache took the value
     */
    boolean storeAll(int feature, int step, T value) {
        checkOpen();
        if (historyLength == 0) {
            return false;
        }
        dropStacked();
        for (int u = 0; u < counts[feature].length; u++) {
            push(feature, u, step);
        }
        T oldest = slot(feature, historyLength - 1);
        if (oldest != null) {
            release(oldest);
        }
        System.arraycopy(slots[feature], 0, slots[feature], 1, historyLength - 1);
        slots[feature][0] = ops.attach(value, scope);
        add(value.sizeInBytes());
        return true;
    }

    /**
     * Stores the values some units computed at {@code step}: {@code value} holds batch rows
     * {@code valueRows} (the units' rows, in that order). The caller keeps ownership of {@code value}.
     */
    void storeSome(int feature, int step, int[] units, int[] valueRows, T value) {
        checkOpen();
        if (historyLength == 0) {
            return;
        }
        dropStacked();
        for (int u : units) {
            push(feature, u, step);
        }
        for (int j = historyLength - 1; j >= 1; j--) {
            T newer = slot(feature, j - 1);
            if (newer != null) {
                T older = slot(feature, j);
                try (T moved = ops.gatherRows(newer, valueRows)) {
                    replace(feature, j, ops.replaceRows(older != null ? older : newer, valueRows, moved));
                }
            }
        }
        T first = slot(feature, 0);
        replace(feature, 0, first != null ? ops.replaceRows(first, valueRows, value) : spread(value, valueRows));
    }

    /**
     * Stores every feature every unit computed at {@code step}, stacked {@code [features, rows, T, D]}
     * in feature order; takes ownership unless the history length is 0.
     *
     * @return whether the cache took the value
     */
    boolean storeAllStacked(int step, T all) {
        checkOpen();
        if (historyLength == 0) {
            return false;
        }
        List<T> views = ops.unstack(all);
        for (int f = 0; f < slots.length; f++) {
            for (int u = 0; u < counts[f].length; u++) {
                push(f, u, step);
            }
            T oldest = slot(f, historyLength - 1);
            if (oldest != null) {
                release(oldest);
            }
            System.arraycopy(slots[f], 0, slots[f], 1, historyLength - 1);
            T view = views.get(f);
            slots[f][0] = ops.attach(view, scope);
            add(view.sizeInBytes());
        }
        T oldestStack = stackedSlot(historyLength - 1);
        if (oldestStack != null) {
            oldestStack.close();
        }
        System.arraycopy(stacked, 0, stacked, 1, historyLength - 1);
        stacked[0] = ops.attach(all, scope);
        return true;
    }

    /**
     * Slot {@code j} of every feature stacked {@code [features, rows, T, D]}, if it was stored
     * by a fused step and no staged store has changed it since; the cache keeps ownership.
     */
    T stacked(int j) {
        checkOpen();
        return stackedSlot(j);
    }

    @SuppressWarnings("unchecked")
    private T stackedSlot(int j) {
        return (T) stacked[j];
    }

    /** A staged store changes single features: the stacked tensors no longer hold every slot. */
    private void dropStacked() {
        for (int j = 0; j < historyLength; j++) {
            T s = stackedSlot(j);
            if (s != null) {
                s.close();
                stacked[j] = null;
            }
        }
    }

    private void push(int feature, int unit, int step) {
        int[] s = steps[feature][unit];
        int n = counts[feature][unit];
        if (n > 0 && s[0] >= step) {
            throw new IllegalStateException("feature " + feature + " of unit " + unit + " already holds a value computed at step "
                    + s[0] + "; cannot store one for step " + step);
        }
        System.arraycopy(s, 0, s, 1, historyLength - 1);
        s[0] = step;
        counts[feature][unit] = Math.min(n + 1, historyLength);
    }

    /** A whole-batch tensor holding {@code values}' rows at {@code at}; other rows are filler no unit reads. */
    private T spread(T values, int[] at) {
        int[] order = new int[rows];
        for (int i = 0; i < at.length; i++) {
            order[at[i]] = i;
        }
        return ops.gatherRows(values, order);
    }

    private void replace(int feature, int j, T value) {
        T old = slot(feature, j);
        if (old != null) {
            release(old); // first, so the cache never holds more than its worst case
        }
        slots[feature][j] = ops.attach(value, scope);
        add(value.sizeInBytes());
    }

    /** The previous value of a measurement (whole batch; see {@link #hasReference}), or {@code null}. */
    T reference(Measurement measurement) {
        checkOpen();
        return references.get(measurement);
    }

    /** Whether unit {@code unit}'s rows of the measurement's reference hold a value. */
    boolean hasReference(Measurement measurement, int unit) {
        boolean[] has = referenceUnits.get(measurement);
        return has != null && has[unit];
    }

    /** Replaces the previous value of a measurement for every unit, releasing the old one; takes ownership. */
    void replaceReference(Measurement measurement, T value) {
        updateReference(measurement, value, null, null);
    }

    /**
     * Replaces the previous value of a measurement for the units {@code unitIds} (batch rows
     * {@code rows}), or for every unit if {@code rows} is null; other units keep theirs. Takes
     * ownership of {@code value} (whole batch) and releases what is no longer needed.
     */
    void updateReference(Measurement measurement, T value, int[] rows, int[] unitIds) {
        checkOpen();
        boolean[] has = referenceUnits.computeIfAbsent(measurement, m -> new boolean[units]);
        T old = references.get(measurement);
        T next;
        if (rows == null || old == null) {
            next = value;
        } else {
            try (value; T moved = ops.gatherRows(value, rows)) {
                next = ops.replaceRows(old, rows, moved);
            }
        }
        if (old != null) {
            references.remove(measurement);
            release(old); // first, so the cache never holds more than its worst case
        }
        references.put(measurement, ops.attach(next, scope));
        add(next.sizeInBytes());
        if (rows == null) {
            Arrays.fill(has, true);
        } else {
            for (int u : unitIds) {
                has[u] = true;
            }
        }
    }

    // ---- block-range residuals ----------------------------------------------------------

    /** The step at which unit {@code unit}'s residual of {@code range} was computed, if any. */
    public OptionalInt residualComputedAt(BlockRange range, int unit) {
        checkOpen();
        int[] at = residualSteps.get(range);
        if (at == null) {
            throw new IllegalArgumentException("no residual of " + range + " is kept (not a declared block range)");
        }
        return at[unit] < 0 ? OptionalInt.empty() : OptionalInt.of(at[unit]);
    }

    /** Whether residuals of {@code range} are kept. */
    boolean keeps(BlockRange range) {
        return residualSteps.containsKey(range);
    }

    /** The residual of a range: the whole batch (rows of units without a residual are filler); the cache keeps ownership. */
    T residual(BlockRange range) {
        checkOpen();
        return residuals.get(range);
    }

    /**
     * Stores the residual of {@code range} the units {@code unitIds} computed at {@code step}:
     * {@code value} is the whole batch and the units' rows are {@code rows} (null: every unit,
     * in which case the cache takes ownership of {@code value}; otherwise the caller keeps it).
     */
    void storeResidual(BlockRange range, int step, int[] unitIds, int[] rows, T value) {
        checkOpen();
        int[] at = residualSteps.get(range);
        T old = residuals.get(range);
        T next;
        if (rows == null) {
            next = value;
        } else {
            try (T moved = ops.gatherRows(value, rows)) {
                next = old == null ? spread(moved, rows) : ops.replaceRows(old, rows, moved);
            }
        }
        if (old != null) {
            residuals.remove(range);
            release(old);
        }
        residuals.put(range, ops.attach(next, scope));
        add(next.sizeInBytes());
        for (int u : unitIds) {
            at[u] = step;
        }
    }

    /** Bytes held now. */
    public long currentBytes() {
        return currentBytes;
    }

    /** The most bytes held at any time. */
    public long peakBytes() {
        return peakBytes;
    }

    /** Whether {@link #close()} was called. */
    public boolean isClosed() {
        return closed;
    }

    /** Releases every cached tensor. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Object[] s : slots) {
            Arrays.fill(s, null);
        }
        Arrays.fill(stacked, null);
        references.clear();
        residuals.clear();
        scope.close();
        currentBytes = 0;
    }

    private void release(T value) {
        currentBytes -= value.sizeInBytes();
        value.close();
    }

    private void add(long bytes) {
        currentBytes += bytes;
        peakBytes = Math.max(peakBytes, currentBytes);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the feature cache is closed (its generation has ended)");
        }
    }
}
