package dev.fora.core.engine;

import dev.fora.core.tensor.Tensor;

/**
 * One decider's rows of a {@link Shared} cached tensor: its value of a feature, a reference or a
 * residual. The decider releases it once, when the value leaves its history. Compaction may move
 * the rows to another place in the same shared object.
 *
 * @param <T> tensor type
 */
final class Rows<T extends Tensor> {

    private final Shared<T> source;
    private int[] at;

    Rows(Shared<T> source, int[] at) {
        this.source = source;
        this.at = at;
    }

    Shared<T> source() {
        return source;
    }

    /** The decider's rows in the source tensor, in its row order (conditional, then unconditional). */
    int[] at() {
        return at;
    }

    void moveTo(int[] rows) {
        this.at = rows;
    }

    void release() {
        source.release(this);
    }
}
