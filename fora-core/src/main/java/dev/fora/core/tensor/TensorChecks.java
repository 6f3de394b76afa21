package dev.fora.core.tensor;

import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

/**
 * The argument and shape checks every {@link TensorOps} implementation makes, with the
 * messages the interface's contract promises ({@link IllegalArgumentException} for a shape or
 * argument mismatch). Engines call these so that {@link ArrayOps} and an engine adapter reject
 * the same inputs with the same words.
 *
 * <p>Shapes are passed as {@code long[]}, outermost dimension first (as {@link Tensor#shape()}).
 */
public final class TensorChecks {

    private TensorChecks() {
    }

    /** Element-wise operation {@code op} on shapes {@code a} and {@code b}: they must be equal. */
    public static void sameShape(long[] a, long[] b, String op) {
        if (!Arrays.equals(a, b)) {
            throw new IllegalArgumentException(op + " needs equal shapes; got " + Arrays.toString(a) + " and "
                    + Arrays.toString(b));
        }
    }

    /** {@link TensorOps#linearCombination}: one coefficient per tensor, at least one term. */
    public static void linearCombinationTerms(double[] coefficients, int tensors) {
        if (coefficients.length == 0 || coefficients.length != tensors) {
            throw new IllegalArgumentException("linearCombination needs one coefficient per tensor and at least one term; got "
                    + coefficients.length + " coefficients for " + tensors + " tensors");
        }
    }

    /**
     * {@link TensorOps#rowLinearCombination}: one coefficient array per tensor (at least one), each
     * of one value or one per batch row, tensors of one shape. Returns the rows.
     */
    public static int rowLinearCombination(double[][] coefficients, List<? extends Tensor> tensors) {
        if (coefficients.length == 0 || coefficients.length != tensors.size()) {
            throw new IllegalArgumentException("rowLinearCombination needs one coefficient array per tensor and at least one"
                    + " term; got " + coefficients.length + " arrays for " + tensors.size() + " tensors");
        }
        long[] shape = tensors.get(0).shape();
        int rows = shape.length == 0 ? 1 : (int) shape[0]; // a scalar is one row
        for (int k = 0; k < coefficients.length; k++) {
            if (!Arrays.equals(tensors.get(k).shape(), shape)) {
                throw new IllegalArgumentException("rowLinearCombination needs tensors of one shape; got "
                        + Arrays.toString(shape) + " and " + Arrays.toString(tensors.get(k).shape()));
            }
            if (coefficients[k].length != 1 && coefficients[k].length != rows) {
                throw new IllegalArgumentException("rowLinearCombination needs one coefficient or one per row (" + rows
                        + ") for each term; term " + k + " has " + coefficients[k].length);
            }
        }
        return rows;
    }

    /** {@link TensorOps#linearCombination}'s coefficients as {@link TensorOps#rowLinearCombination}'s: one per term, for every row. */
    public static double[][] forEveryRow(double[] coefficients) {
        double[][] out = new double[coefficients.length][];
        for (int k = 0; k < coefficients.length; k++) {
            out[k] = new double[] {coefficients[k]};
        }
        return out;
    }

    /** The coefficients of {@link TensorOps#rowLinearCombination} when every row's are the same, else null. */
    public static double[] alikeForEveryRow(double[][] coefficients) {
        double[] alike = new double[coefficients.length];
        for (int k = 0; k < coefficients.length; k++) {
            alike[k] = coefficients[k][0];
            for (double c : coefficients[k]) {
                if (Double.compare(c, alike[k]) != 0) {
                    return null;
                }
            }
        }
        return alike;
    }

    /** {@link TensorOps#gatedAdd}: {@code x} (and the branch) {@code [N,T,D]}, gate {@code [N,D]}. */
    public static void gatedAddShapes(long[] x, long[] gate) {
        if (x.length != 3 || gate.length != 2 || gate[0] != x[0] || gate[1] != x[2]) {
            throw new IllegalArgumentException("gatedAdd needs x/branch [N,T,D] and gate [N,D]; got x "
                    + Arrays.toString(x) + ", gate " + Arrays.toString(gate));
        }
    }

    /** {@link TensorOps#clamp}: {@code min <= max} (so neither is NaN). */
    public static void clampRange(double min, double max) {
        if (!(min <= max)) {
            throw new IllegalArgumentException("clamp needs min <= max; got " + min + ", " + max);
        }
    }

    /** {@link TensorOps#sliceBatch(Tensor, long, long, long)}: the range fits dimension 0 and the step is positive. */
    public static void stridedRows(long[] shape, long from, long to, long step) {
        sliceRange(shape, 0, from, to);
        if (step < 1) {
            throw new IllegalArgumentException("slice step must be >= 1, got " + step);
        }
    }

    /** {@link TensorOps#repeatRows}: each row at least once. */
    public static void repeatTimes(int times) {
        if (times < 1) {
            throw new IllegalArgumentException("rows must repeat >= 1 times, got " + times);
        }
    }

    /** A slice {@code [from, to)} of dimension {@code axis} of {@code shape}: the dimension exists and holds the range. */
    public static void sliceRange(long[] shape, int axis, long from, long to) {
        if (shape.length <= axis) {
            throw new IllegalArgumentException("cannot slice dimension " + axis + " of shape " + Arrays.toString(shape));
        }
        if (from < 0 || to > shape[axis] || from > to) {
            throw new IllegalArgumentException("slice [" + from + ", " + to + ") out of range for dimension " + axis
                    + " of shape " + Arrays.toString(shape));
        }
    }

    /**
     * A concatenation of {@code parts} along {@code axis}: at least one part, the axis exists,
     * and every part has the first one's shape except along the axis.
     *
     * @param checkedShape the engine's own check of one part (ownership, not released), returning its shape;
     *     called for the first part and then for every part in order, so the engine's exceptions
     *     come first for the part that causes them
     * @return the shape of the first part
     */
    public static <T> long[] concatShapes(List<T> parts, int axis, Function<? super T, long[]> checkedShape) {
        if (parts.isEmpty()) {
            throw new IllegalArgumentException("concat needs at least one tensor");
        }
        long[] first = checkedShape.apply(parts.get(0));
        if (first.length <= axis) {
            throw new IllegalArgumentException("cannot concatenate along dimension " + axis + " of shape "
                    + Arrays.toString(first));
        }
        for (T p : parts) {
            long[] s = checkedShape.apply(p);
            boolean ok = s.length == first.length;
            for (int d = 0; ok && d < s.length; d++) {
                ok = d == axis || s[d] == first[d];
            }
            if (!ok) {
                throw new IllegalArgumentException("cannot concatenate shapes " + Arrays.toString(first) + " and "
                        + Arrays.toString(s) + " along dimension " + axis);
            }
        }
        return first;
    }

    /** {@link TensorOps#gatherStackRows}: a stack {@code [S, N, ...]}, at least one row, each inside its dimension 1. */
    public static void gatherStackRows(long[] shape, int[] rows) {
        if (shape.length < 2) {
            throw new IllegalArgumentException("gatherStackRows needs a stack [S, N, ...], got shape " + Arrays.toString(shape));
        }
        if (rows.length == 0) {
            throw new IllegalArgumentException("gatherStackRows needs at least one row");
        }
        for (int r : rows) {
            if (r < 0 || r >= shape[1]) {
                throw new IllegalArgumentException("row " + r + " out of range for stack shape " + Arrays.toString(shape));
            }
        }
    }

    /** {@link TensorOps#gatherRows}: at least one row, each inside dimension 0 of {@code shape}. */
    public static void gatherRows(long[] shape, int[] rows) {
        if (shape.length == 0) {
            throw new IllegalArgumentException("gatherRows needs a tensor with a batch dimension");
        }
        if (rows.length == 0) {
            throw new IllegalArgumentException("gatherRows needs at least one row");
        }
        for (int r : rows) {
            if (r < 0 || r >= shape[0]) {
                throw new IllegalArgumentException("row " + r + " out of range for shape " + Arrays.toString(shape));
            }
        }
    }
}
