package dev.fora.core.engine;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
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

    /** The runs' rows as one batch: borrowed when they are the whole of one batch in order, else joined. */
    static <T extends Tensor> T rows(TensorOps<T> ops, List<Run<T>> runs, Map<Run<T>, BatchRow<T>> of) {
        T batch = of.get(runs.get(0)).batch();
        boolean whole = batch.shape()[0] == runs.size();
        for (int k = 0; whole && k < runs.size(); k++) {
            BatchRow<T> r = of.get(runs.get(k));
            whole = r.batch() == batch && r.row() == k;
        }
        if (whole) {
            return batch;
        }
        return runs.size() == 1 ? of.get(runs.get(0)).tensor(ops)
                : ops.concatBatch(runs.stream().map(r -> of.get(r).tensor(ops)).toList());
    }
}
