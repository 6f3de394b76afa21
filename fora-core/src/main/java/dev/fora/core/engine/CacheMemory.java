package dev.fora.core.engine;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.ArrayList;
import java.util.List;

/**
 * The native memory of a cache: the scope its tensors live in, the bytes they hold (now and at
 * most), and compaction. A tensor computed for several deciders is shared until some of them
 * move on; the rows still held are then copied into a tensor of their own before anything new
 * is counted, so the cache never holds, or counts, rows nobody reads, and its peak stays within
 * the policy's worst case. A lockstep batch moves on together and never compacts.
 *
 * @param <T> tensor type
 */
final class CacheMemory<T extends Tensor> implements AutoCloseable {

    private final TensorOps<T> ops;
    private final TensorScope scope;
    private final List<Shared<T>> partlyHeld = new ArrayList<>();
    private long current;
    private long peak;
    /** Set while {@link #reclaimStack} runs an eviction, and the stack it took. */
    private boolean reclaiming;
    private T reclaimed;

    CacheMemory(TensorOps<T> ops) {
        this.ops = ops;
        this.scope = ops.newDetachedScope();
    }

    /**
     * A cached tensor made from {@code value}, which moves into the cache's scope; first compacts
     * what its holders have partly let go.
     *
     * @param counted whether its bytes count (false for a stack whose per-feature views count)
     */
    Shared<T> share(T value, boolean counted) {
        compact();
        Shared<T> shared = new Shared<>(this, ops.attach(value, scope), counted);
        add(shared.bytes());
        return shared;
    }

    /**
     * Runs an eviction and returns a stack it freed that nothing reads any more, not closed but
     * moved into the current scope (the caller takes it, to write the next stack into), or null.
     * Anything else the eviction frees is closed as usual.
     */
    T reclaimStack(Runnable eviction) {
        reclaiming = true;
        try {
            eviction.run();
        } catch (RuntimeException e) {
            if (reclaimed != null) {
                reclaimed.close();
                reclaimed = null;
            }
            throw e;
        } finally {
            reclaiming = false;
        }
        T taken = reclaimed;
        reclaimed = null;
        return taken == null ? null : ops.attach(taken, ops.currentScope());
    }

    /** Called by a freed tensor: whether the eviction under way takes it rather than having it closed. */
    boolean reclaims(Shared<T> freed) {
        if (reclaiming && reclaimed == null && freed.unreadStack()) {
            reclaimed = freed.tensor();
            return true;
        }
        return false;
    }

    /** Called by a shared tensor that some, but not all, of its rows' holders let go. */
    void partlyReleased(Shared<T> shared) {
        if (!partlyHeld.contains(shared)) {
            partlyHeld.add(shared);
        }
    }

    void freed(Shared<T> shared) {
        partlyHeld.remove(shared);
        current -= shared.bytes();
    }

    /** Copies the rows still held of every partly released tensor into a tensor of their own. */
    void compact() {
        for (Shared<T> s : partlyHeld) {
            s.compact(ops, scope);
        }
        partlyHeld.clear();
    }

    void add(long bytes) {
        current += bytes;
        peak = Math.max(peak, current);
    }

    void remove(long bytes) {
        current -= bytes;
    }

    long current() {
        return current;
    }

    long peak() {
        return peak;
    }

    @Override
    public void close() {
        partlyHeld.clear();
        scope.close();
        current = 0;
    }
}
