package dev.fora.core.engine;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Row {@code row} of a batch tensor, sliced only when a run takes it alone: runs that a pass or a
 * sampler update takes in the batch's own order borrow the batch.
 */
record BatchRow<T extends Tensor>(T batch, int row) {

    T tensor(TensorOps<T> ops) {
        return batch.shape()[0] == 1 ? batch : ops.sliceBatch(batch, row, row + 1);
    }

    /**
     * The runs' rows as one batch. Consecutive runs whose rows lie in one batch take one op: the
     * batch itself when they are all of it in order, else a slice or a gather; pieces from several
     * batches are then joined. One op per source batch rather than one per run: with runs at
     * different steps, a pass's update groups each take rows out of the same batches.
     */
    static <T extends Tensor> T rows(TensorOps<T> ops, List<Run<T>> runs, Map<Run<T>, BatchRow<T>> of) {
        List<T> pieces = new ArrayList<>();
        int i = 0;
        while (i < runs.size()) {
            T batch = of.get(runs.get(i)).batch();
            int j = i;
            while (j < runs.size() && of.get(runs.get(j)).batch() == batch) {
                j++;
            }
            int[] at = new int[j - i];
            for (int k = i; k < j; k++) {
                at[k - i] = of.get(runs.get(k)).row();
            }
            T piece = take(ops, batch, at);
            if (i == 0 && j == runs.size()) {
                return piece;
            }
            pieces.add(piece);
            i = j;
        }
        return ops.concatBatch(pieces);
    }

    /** Rows {@code at} of {@code batch}: the batch itself, a slice when they run in order, else a gather. */
    private static <T extends Tensor> T take(TensorOps<T> ops, T batch, int[] at) {
        for (int k = 1; k < at.length; k++) {
            if (at[k] != at[0] + k) {
                return ops.gatherRows(batch, at);
            }
        }
        return at[0] == 0 && at.length == batch.shape()[0] ? batch : ops.sliceBatch(batch, at[0], at[0] + at.length);
    }
}
