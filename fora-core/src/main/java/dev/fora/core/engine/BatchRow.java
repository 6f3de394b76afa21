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
     * The runs' rows as one batch: borrowed when they are the whole of one batch in order, else
     * one gather per source batch ({@link Gathered#of(TensorOps, List, int[])}), joined. One op
     * per source batch rather than one per run: with runs at different steps, a pass's update
     * groups each take rows out of the same batches.
     */
    static <T extends Tensor> T rows(TensorOps<T> ops, List<Run<T>> runs, Map<Run<T>, BatchRow<T>> of) {
        List<T> batches = new ArrayList<>(runs.size());
        int[] at = new int[runs.size()];
        for (int k = 0; k < at.length; k++) {
            BatchRow<T> r = of.get(runs.get(k));
            batches.add(r.batch());
            at[k] = r.row();
        }
        return Gathered.of(ops, batches, at).tensor();
    }
}
