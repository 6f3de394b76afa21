package dev.fora.core.engine;

import dev.fora.core.cache.Measurement;
import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The measurements of one pass: each decider's relative change of a value against its own
 * previous one (modulated input, block residual, a computed feature), and the magnitude of a
 * stored range residual. A decider's value is its rows' alone, whatever else is in the batch.
 *
 * @param <T> tensor type
 */
final class Measuring<T extends Tensor> {

    private final PassLayout<T> layout;
    private final TensorOps<T> ops;

    Measuring(PassLayout<T> layout) {
        this.layout = layout;
        this.ops = layout.ops;
    }

    /** The deciders of {@code group} that declared {@code m}. */
    List<Integer> declaring(Measurement m, List<Integer> group) {
        List<Integer> out = new ArrayList<>();
        for (int u : group) {
            if (layout.states.get(u).declarations.measured.contains(m)) {
                out.add(u);
            }
        }
        return out;
    }

    /**
     * Gives each decider of {@code group} the change of {@code now} (whole batch) against its
     * previous value (none at its first), and keeps {@code now}'s rows as their new previous
     * value. Takes {@code now}.
     */
    void change(Measurement m, T now, List<Integer> group) {
        List<Integer> compared = new ArrayList<>();
        for (int u : group) {
            if (layout.states.get(u).reference(m) != null) {
                compared.add(u);
            }
        }
        if (!compared.isEmpty()) {
            int[] rows = layout.rowsOf(compared);
            try (Gathered<T> before = layout.gather(rows, s -> s.reference(m));
                 Gathered<T> current = Gathered.of(ops, now, rows)) {
                double[] changes = relativeChanges(current.tensor(), before.tensor(), rows, compared);
                for (int k = 0; k < compared.size(); k++) {
                    layout.states.get(compared.get(k)).values.put(m, changes[k]);
                }
            }
        }
        for (int u : group) {
            layout.states.get(u).evictReference(m);
        }
        int[] rows = layout.rowsOf(group);
        T kept = now;
        if (!layout.isWholeBatch(group)) {
            kept = ops.gatherRows(now, rows);
            now.close();
        }
        Shared<T> shared = layout.share(kept, true);
        for (int u : group) {
            DeciderState<T> s = layout.states.get(u);
            s.setReference(m, shared.rows(layout.positionsIn(rows, s)));
        }
    }

    /**
     * Tells the deciders of {@code computing} that track {@link Measurement#computedChange()}
     * how much their newly computed rows of a feature changed; {@code value} holds the rows
     * {@code valueRows}, ascending. Called before the value is stored.
     */
    void computed(int feature, int block, int branch, T value, int[] valueRows, List<Integer> computing) {
        List<Integer> told = new ArrayList<>();
        for (int u : computing) {
            DeciderState<T> s = layout.states.get(u);
            if (s.declarations.measuresComputedChange && s.historyLength() > 0 && s.count(feature) > 0) {
                told.add(u);
            }
        }
        if (told.isEmpty()) {
            return;
        }
        int[] rows = layout.rowsOf(told);
        int[] positions = PassLayout.positions(valueRows, rows);
        double[] changes;
        try (Gathered<T> before = layout.gather(rows, s -> s.slot(feature, 0));
             Gathered<T> now = Gathered.of(ops, value, positions)) {
            changes = relativeChanges(now.tensor(), before.tensor(), rows, told);
        }
        for (int k = 0; k < told.size(); k++) {
            DeciderState<T> s = layout.states.get(told.get(k));
            double change = changes[k];
            Asking.tell(s, () -> s.decider.computed(new DeciderContext(s, s.step, block, branch), change));
        }
    }

    /** Each decider's mean absolute value of its rows of {@code delta}, which holds the rows {@code rows}, ascending. */
    void magnitude(Measurement m, T delta, int[] rows, List<Integer> group) {
        double[] sums = ops.rowAbsSums(delta);
        long[] shape = delta.shape();
        long perRow = 1;
        for (int i = 1; i < shape.length; i++) {
            perRow *= shape[i];
        }
        for (int u : group) {
            DeciderState<T> s = layout.states.get(u);
            double sum = 0;
            for (int r : s.batchRows) {
                sum += sums[Arrays.binarySearch(rows, r)];
            }
            s.values.put(m, sum / (perRow * s.batchRows.length));
        }
    }

    /**
     * Per decider of {@code group} (in order), {@code sum|now - before| / sum|before|} over its rows;
     * the tensors hold the rows {@code rows}, ascending.
     */
    private double[] relativeChanges(T now, T before, int[] rows, List<Integer> group) {
        double[] num;
        try (T diff = ops.sub(now, before)) {
            num = ops.rowAbsSums(diff);
        }
        double[] den = ops.rowAbsSums(before);
        double[] out = new double[group.size()];
        for (int k = 0; k < group.size(); k++) {
            double n = 0;
            double d = 0;
            for (int r : layout.states.get(group.get(k)).batchRows) {
                int p = Arrays.binarySearch(rows, r);
                n += num[p];
                d += den[p];
            }
            out[k] = Measurement.relativeChange(n, d);
        }
        return out;
    }
}
