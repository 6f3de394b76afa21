package dev.fora.core.cache;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The cached branch outputs of one generation: per (block, branch) the last
 * {@code historyLength} computed values with the steps they were computed at, plus the
 * reference tensors of measured {@link Signal}s.
 *
 * <p>The cache owns its tensors in a detached {@link TensorScope}: a stored tensor is moved
 * there, a value pushed out of the history is released at once, and {@link #close()}
 * releases everything. It counts its bytes (current and peak).
 *
 * @param <T> tensor type
 */
public final class FeatureCache<T extends Tensor> implements AutoCloseable {

    private record Entry<T>(int step, T value) {
    }

    private final TensorOps<T> ops;
    private final int depth;
    private final int historyLength;
    private final TensorScope scope;
    private final List<ArrayDeque<Entry<T>>> entries;
    private final Map<Signal, T> signalReferences = new EnumMap<>(Signal.class);
    private long currentBytes;
    private long peakBytes;
    private boolean closed;

    /**
     * @param ops the engine
     * @param depth number of blocks
     * @param historyLength computed values kept per (block, branch), {@code >= 0}
     */
    public FeatureCache(TensorOps<T> ops, int depth, int historyLength) {
        if (historyLength < 0) {
            throw new IllegalArgumentException("historyLength must be >= 0, got " + historyLength);
        }
        this.ops = ops;
        this.depth = depth;
        this.historyLength = historyLength;
        this.scope = ops.newDetachedScope();
        this.entries = new ArrayList<>(2 * depth);
        for (int i = 0; i < 2 * depth; i++) {
            entries.add(new ArrayDeque<>(Math.max(1, historyLength)));
        }
    }

    /** Computed values kept per (block, branch). */
    public int historyLength() {
        return historyLength;
    }

    /**
     * Stores a freshly computed value, taking ownership of it; if the history is full the
     * oldest value is released first. With a history length of 0 nothing is stored.
     *
     * @return whether the cache took the value (if not, the caller still owns it)
     */
    public boolean store(int step, int block, Branch branch, T value) {
        checkOpen();
        if (historyLength == 0) {
            return false;
        }
        ArrayDeque<Entry<T>> history = slot(block, branch);
        if (!history.isEmpty() && history.peekFirst().step() >= step) {
            throw new IllegalStateException("block " + block + " " + branch + " already holds a value computed at step "
                    + history.peekFirst().step() + "; cannot store one for step " + step);
        }
        while (history.size() >= historyLength) {
            release(history.removeLast().value());
        }
        history.addFirst(new Entry<>(step, ops.attach(value, scope)));
        add(value.sizeInBytes());
        return true;
    }

    /** The stored values of a (block, branch), most recent first (unmodifiable; the cache keeps ownership). */
    public List<T> history(int block, Branch branch) {
        checkOpen();
        List<T> values = new ArrayList<>(historyLength);
        for (Entry<T> e : slot(block, branch)) {
            values.add(e.value());
        }
        return Collections.unmodifiableList(values);
    }

    /** The steps the stored values of a (block, branch) were computed at, most recent first. */
    public int[] computedSteps(int block, Branch branch) {
        checkOpen();
        ArrayDeque<Entry<T>> history = slot(block, branch);
        int[] steps = new int[history.size()];
        Iterator<Entry<T>> it = history.iterator();
        for (int i = 0; i < steps.length; i++) {
            steps[i] = it.next().step();
        }
        return steps;
    }

    /** The reference value of a signal from the previous step, or {@code null}. */
    T signalReference(Signal signal) {
        checkOpen();
        return signalReferences.get(signal);
    }

    /** Replaces the reference value of a signal, releasing the old one; takes ownership. */
    void replaceSignalReference(Signal signal, T value) {
        checkOpen();
        T old = signalReferences.put(signal, ops.attach(value, scope));
        if (old != null) {
            release(old);
        }
        add(value.sizeInBytes());
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
        for (ArrayDeque<Entry<T>> history : entries) {
            history.clear();
        }
        signalReferences.clear();
        scope.close();
        currentBytes = 0;
    }

    private ArrayDeque<Entry<T>> slot(int block, Branch branch) {
        if (block < 0 || block >= depth) {
            throw new IndexOutOfBoundsException("block " + block + " outside 0.." + (depth - 1));
        }
        return entries.get(2 * block + branch.ordinal());
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
            throw new IllegalStateException("the feature cache is closed (its generation session has ended)");
        }
    }
}
