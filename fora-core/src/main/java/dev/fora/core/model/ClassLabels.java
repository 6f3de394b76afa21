package dev.fora.core.model;

import java.util.Arrays;
import java.util.Objects;

/**
 * Class-label conditioning (DiT): one label per row. Whether a label is in range is the
 * model's to say ({@link ConditioningSpec.Classes#check}).
 */
public final class ClassLabels implements Conditioning {

    private final int[] labels;

    private ClassLabels(int[] labels) {
        this.labels = labels;
    }

    /** The given labels (copied). */
    public static ClassLabels of(int... labels) {
        return new ClassLabels(Objects.requireNonNull(labels, "labels").clone());
    }

    /** The labels (a copy). */
    public int[] labels() {
        return labels.clone();
    }

    /** The label of row {@code row}. */
    public int label(int row) {
        return labels[row];
    }

    @Override
    public int size() {
        return labels.length;
    }

    @Override
    public ClassLabels rows(int[] rows) {
        int[] out = new int[rows.length];
        for (int i = 0; i < rows.length; i++) {
            out[i] = labels[rows[i]];
        }
        return new ClassLabels(out);
    }

    @Override
    public ClassLabels concat(Conditioning other) {
        if (!(other instanceof ClassLabels o)) {
            throw new IllegalArgumentException("cannot append " + other.getClass().getSimpleName() + " to class labels");
        }
        int[] out = Arrays.copyOf(labels, labels.length + o.labels.length);
        System.arraycopy(o.labels, 0, out, labels.length, o.labels.length);
        return new ClassLabels(out);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ClassLabels c && Arrays.equals(labels, c.labels);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(labels);
    }

    @Override
    public String toString() {
        return "labels " + Arrays.toString(labels);
    }
}
