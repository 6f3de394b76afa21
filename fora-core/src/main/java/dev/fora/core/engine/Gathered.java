package dev.fora.core.engine;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.BiFunction;
import java.util.function.Function;

/**
 * Rows laid out in the order a pass needs them, and whether this object made them (then
 * {@link #close()} releases them) or borrows a tensor someone else owns. Borrowing is the fast
 * path: when the rows asked for are exactly one tensor's rows in order, nothing is copied, so a
 * lockstep batch costs what it did when the cache held whole-batch tensors.
 *
 * @param tensor the rows
 * @param owned whether {@link #close()} releases {@code tensor}
 * @param <T> tensor type
 */
record Gathered<T extends Tensor>(T tensor, boolean owned) implements AutoCloseable {

    /** Rows {@code at} of {@code whole}, borrowing {@code whole} when {@code at} is all of it in order. */
    static <T extends Tensor> Gathered<T> of(TensorOps<T> ops, T whole, int[] at) {
        return of(List.of(whole), at, 0, ops::gatherRows, ops::concatBatch);
    }

    /**
     * Output row {@code p} is row {@code at[p]} of {@code sources.get(p)}: consecutive rows of one
     * source tensor are gathered at once, and one source read whole and in order is borrowed.
     */
    static <T extends Tensor> Gathered<T> of(TensorOps<T> ops, List<T> sources, int[] at) {
        return of(sources, at, 0, ops::gatherRows, ops::concatBatch);
    }

    /** {@link #of(TensorOps, List, int[])} for rows of stacks {@code [S, N, ...]} (their dimension 1). */
    static <T extends Tensor> Gathered<T> ofStacks(TensorOps<T> ops, List<T> sources, int[] at) {
        return of(sources, at, 1, ops::gatherStackRows, ops::concatChannels);
    }

    /** Rows along dimension {@code dim}; {@code sources} has one entry per row, or one for all. */
    private static <T extends Tensor> Gathered<T> of(List<T> sources, int[] at, int dim, BiFunction<T, int[], T> gather,
            Function<List<T>, T> concat) {
        List<T> pieces = new ArrayList<>();
        int i = 0;
        while (i < at.length) {
            T source = sources.get(sources.size() == 1 ? 0 : i);
            int j = i;
            while (j < at.length && sources.get(sources.size() == 1 ? 0 : j) == source) {
                j++;
            }
            int[] rows = Arrays.copyOfRange(at, i, j);
            if (i == 0 && j == at.length) {
                return isIdentity(rows, source.shape()[dim]) ? new Gathered<>(source, false)
                        : new Gathered<>(gather.apply(source, rows), true);
            }
            pieces.add(gather.apply(source, rows));
            i = j;
        }
        T all = concat.apply(pieces);
        pieces.forEach(Tensor::close);
        return new Gathered<>(all, true);
    }

    private static boolean isIdentity(int[] at, long rows) {
        if (at.length != rows) {
            return false;
        }
        for (int i = 0; i < at.length; i++) {
            if (at[i] != i) {
                return false;
            }
        }
        return true;
    }

    @Override
    public void close() {
        if (owned) {
            tensor.close();
        }
    }
}
