package dev.fora.core.engine;

import dev.fora.core.cache.BlockRange;
import dev.fora.core.cache.CacheDecider;
import dev.fora.core.cache.Measurement;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.tensor.Tensor;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * One decider (an image, or one guidance half of it) and everything the cache keeps for its
 * rows: per feature its {@code historyLength} most recent computed values and the steps they were
 * computed at, the stacked slots of fused steps, the previous value of each declared
 * measurement, and per declared block range its residual. Every value is this decider's own
 * {@link Rows}, so deciders at different steps, or in different requests, share nothing but
 * the tensors they were computed in.
 *
 * <p>The cache takes ownership of every value stored in it; values leave when the history moves
 * past them or at {@link #close()}.
 *
 * @param <T> tensor type
 */
final class DeciderState<T extends Tensor> implements AutoCloseable {

    final CacheDecider decider;
    final Declarations declarations;
    final GenerationStats stats;
    /** This decider's index in {@link #stats}. */
    final int index;
    /** How errors name it: "image 3 (conditional half)". */
    final String name;
    /** 2 for a guided image decided as one, else 1. */
    final int rowCount;

    /** This pass: the decider's rows in the batch (conditional first) and its step. */
    int[] batchRows;
    SamplingStep step;
    /** This pass: the values of the measurements taken so far. */
    final Map<Measurement, Double> values = new HashMap<>();
    /**
     * What the decider (or its answer) threw, if it did: its rows then compute until the pass
     * ends, it is asked nothing more, and its run fails alone.
     */
    RuntimeException failure;

    private final int history;
    private final Rows<T>[][] slots;
    private final int[][] steps;
    private final int[] counts;
    private final Rows<T>[] stacked;
    private final Map<Measurement, Rows<T>> references = new HashMap<>();
    private final Map<BlockRange, Rows<T>> residuals = new HashMap<>();
    private final Map<BlockRange, Integer> residualSteps = new HashMap<>();
    private boolean closed;

    @SuppressWarnings("unchecked")
    DeciderState(CacheDecider decider, Declarations declarations, GenerationStats stats, int index, String name, int rowCount) {
        this.decider = decider;
        this.declarations = declarations;
        this.stats = stats;
        this.index = index;
        this.name = name;
        this.rowCount = rowCount;
        this.history = declarations.historyLength;
        int features = declarations.info.config().features();
        this.slots = new Rows[features][history];
        this.steps = new int[features][history];
        this.counts = new int[features];
        this.stacked = new Rows[history];
    }

    int historyLength() {
        return history;
    }

    int count(int feature) {
        return counts[feature];
    }

    int[] computedSteps(int feature) {
        return Arrays.copyOf(steps[feature], counts[feature]);
    }

    /** This decider's {@code j}-th most recent value of a feature; the cache keeps it. */
    Rows<T> slot(int feature, int j) {
        return slots[feature][j];
    }

    /** Slot {@code j} of every feature as rows of one stacked tensor, if a fused step stored it and nothing changed it since. */
    Rows<T> stacked(int j) {
        return stacked[j];
    }

    /**
     * Makes room for a value of {@code feature} computed at {@code step}: releases the oldest if the
     * history is full. Called for every storing decider before the new value is counted, so the
     * cache never holds more than its worst case.
     */
    void evict(int feature, int step) {
        int n = counts[feature];
        if (n > 0 && steps[feature][0] >= step) {
            throw new IllegalStateException("feature " + feature + " of " + name + " already holds a value computed at step "
                    + steps[feature][0] + "; cannot store one for step " + step);
        }
        if (n == history) {
            slots[feature][history - 1].release();
            slots[feature][history - 1] = null;
        }
    }

    /** Stores a value {@link #evict} made room for; takes it. A staged store ends the stacked slots. */
    void put(int feature, int step, Rows<T> value) {
        putInHistory(feature, step, value);
        dropStacked();
    }

    /** Makes room for a fused step's stack: releases the oldest stacked slot. */
    void evictStacked() {
        if (history > 0 && stacked[history - 1] != null) {
            stacked[history - 1].release();
            stacked[history - 1] = null;
        }
    }

    /** Stores a fused full step: every feature's value, and the stack they are views of. Takes them. */
    void putAll(int step, List<Rows<T>> features, Rows<T> stack) {
        for (int f = 0; f < features.size(); f++) {
            putInHistory(f, step, features.get(f));
        }
        System.arraycopy(stacked, 0, stacked, 1, history - 1);
        stacked[0] = stack;
    }

    private void putInHistory(int feature, int step, Rows<T> value) {
        System.arraycopy(slots[feature], 0, slots[feature], 1, history - 1);
        System.arraycopy(steps[feature], 0, steps[feature], 1, history - 1);
        slots[feature][0] = value;
        steps[feature][0] = step;
        counts[feature] = Math.min(counts[feature] + 1, history);
    }

    private void dropStacked() {
        for (int j = 0; j < history; j++) {
            if (stacked[j] != null) {
                stacked[j].release();
                stacked[j] = null;
            }
        }
    }

    Rows<T> reference(Measurement m) {
        return references.get(m);
    }

    /** Releases the previous value of a measurement before a new one is counted. */
    void evictReference(Measurement m) {
        Rows<T> old = references.remove(m);
        if (old != null) {
            old.release();
        }
    }

    /** Replaces the previous value of a measurement; takes {@code value}. */
    void setReference(Measurement m, Rows<T> value) {
        evictReference(m);
        references.put(m, value);
    }

    Rows<T> residual(BlockRange range) {
        return residuals.get(range);
    }

    OptionalInt residualComputedAt(BlockRange range) {
        Integer at = residualSteps.get(range);
        return at == null ? OptionalInt.empty() : OptionalInt.of(at);
    }

    /** Releases the residual of {@code range} before a new one is counted. */
    void evictResidual(BlockRange range) {
        Rows<T> old = residuals.remove(range);
        if (old != null) {
            old.release();
        }
    }

    /** Stores the residual of {@code range} computed at {@code step}; takes {@code value}. */
    void setResidual(BlockRange range, int step, Rows<T> value) {
        evictResidual(range);
        residuals.put(range, value);
        residualSteps.put(range, step);
    }

    /** The bytes this decider's rows account for: its share of every tensor it holds. */
    long bytes() {
        long rows = 0;
        for (int f = 0; f < counts.length; f++) {
            rows += (long) counts[f] * rowCount;
        }
        rows += (long) (references.size() + residuals.size()) * rowCount;
        return rows * declarations.info.config().featureBytesPerRow();
    }

    boolean isClosed() {
        return closed;
    }

    /** Releases every value. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Rows<T>[] feature : slots) {
            for (int j = 0; j < feature.length; j++) {
                if (feature[j] != null) {
                    feature[j].release();
                    feature[j] = null;
                }
            }
        }
        dropStacked();
        references.values().forEach(Rows::release);
        references.clear();
        residuals.values().forEach(Rows::release);
        residuals.clear();
    }
}
