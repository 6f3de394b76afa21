package dev.fora.core.engine;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.ArrayList;
import java.util.List;

/**
 * A cached tensor whose rows belong to several deciders (the rows one pass computed for all of
 * them). Each decider holds its own {@link Rows} of it; the tensor is released, and leaves the
 * count, when the last holder lets go. Only the pass's thread touches it.
 *
 * @param <T> tensor type
 */
final class Shared<T extends Tensor> {

    private final CacheMemory<T> memory;
    private final boolean counted;
    private final List<Rows<T>> holders = new ArrayList<>();
    private T tensor;
    private long bytes;
    /** For a stack, the shared views of its features: it is read while any of them is held. */
    private List<Shared<T>> views = List.of();
    private boolean freed;

    Shared(CacheMemory<T> memory, T tensor, boolean counted) {
        this.memory = memory;
        this.tensor = tensor;
        this.counted = counted;
        this.bytes = counted ? tensor.sizeInBytes() : 0;
    }

    T tensor() {
        return tensor;
    }

    void viewedThrough(List<Shared<T>> views) {
        this.views = views;
    }

    /** Whether this is a stack that nothing reads any more: it and every view of it are freed. */
    boolean unreadStack() {
        return freed && !views.isEmpty() && views.stream().allMatch(v -> v.freed);
    }

    long bytes() {
        return bytes;
    }

    /** A new holder of rows {@code at} of the tensor, in the holder's row order. */
    Rows<T> rows(int[] at) {
        Rows<T> r = new Rows<>(this, at);
        holders.add(r);
        return r;
    }

    void release(Rows<T> holder) {
        holders.remove(holder);
        if (holders.isEmpty()) {
            free();
        } else if (counted) {
            memory.partlyReleased(this);
        }
    }

    /** Keeps only the rows still held, in a new tensor; the holders are pointed at it. */
    void compact(TensorOps<T> ops, TensorScope scope) {
        int n = 0;
        for (Rows<T> h : holders) {
            n += h.at().length;
        }
        if (holders.isEmpty() || n == tensor.shape()[0]) {
            return;
        }
        int[] keep = new int[n];
        int k = 0;
        for (Rows<T> h : holders) {
            int[] at = new int[h.at().length];
            for (int i = 0; i < at.length; i++) {
                keep[k] = h.at()[i];
                at[i] = k++;
            }
            h.moveTo(at);
        }
        T kept = ops.attach(ops.gatherRows(tensor, keep), scope);
        tensor.close();
        tensor = kept;
        memory.remove(bytes);
        bytes = kept.sizeInBytes();
        memory.add(bytes);
    }

    private void free() {
        freed = true;
        memory.freed(this);
        if (!memory.reclaims(this)) {
            tensor.close();
        }
    }
}
