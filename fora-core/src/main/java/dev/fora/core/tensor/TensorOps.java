package dev.fora.core.tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * The tensor operations the core needs: small enough to implement on any engine.
 *
 * <h2>Lifetime</h2>
 * Every tensor an operation creates belongs to the <em>current scope</em>. A typical
 * sampler step is:
 * <pre>{@code
 * TensorScope outer = ops.currentScope();
 * try (TensorScope step = ops.openScope()) {      // becomes the current scope
 *     T out = ...;                                // temporaries land in 'step'
 *     next = ops.attach(out, outer);              // survives the step
 * }                                               // temporaries released here
 * }</pre>
 * Long-lived holders (the feature cache of a generation) use
 * {@link #newDetachedScope()}, which never becomes current: tensors enter it only through
 * {@link #attach(Tensor, TensorScope)}.
 *
 * <p>All operations are out of place: inputs are never modified. Shapes are checked;
 * a mismatch is an {@link IllegalArgumentException}. Using a released tensor is an
 * {@link IllegalStateException}.
 *
 * <p>An instance tracks one current scope; use it from one thread at a time.
 *
 * @param <T> the engine's tensor type
 */
public interface TensorOps<T extends Tensor> {

    // ---- scopes -------------------------------------------------------------------------

    /** The scope that receives newly created tensors. */
    TensorScope currentScope();

    /**
     * Opens a child of the current scope and makes it current until it is closed; closing it
     * makes its parent current again. Meant for try-with-resources blocks. Closing a scope
     * that is an ancestor of the current one also closes the scopes below it, and its nearest
     * open ancestor becomes current.
     */
    TensorScope openScope();

    /** Creates a scope that never becomes current (for caches and other holders). */
    TensorScope newDetachedScope();

    /** Moves {@code tensor} into {@code scope} (out of whatever scope owned it); returns it. */
    T attach(T tensor, TensorScope scope);

    // ---- creation and read-back ---------------------------------------------------------

    /** A new tensor with a copy of {@code data} (row-major) and the given shape. */
    T fromFloats(long[] shape, float[] data);

    /** A copy of the tensor's elements, row-major. */
    float[] toFloats(T tensor);

    // ---- elementwise arithmetic ---------------------------------------------------------

    /** {@code a + b} (same shapes). */
    T add(T a, T b);

    /** {@code a - b} (same shapes). */
    T sub(T a, T b);

    /** Elementwise {@code a * b} (same shapes). */
    T mul(T a, T b);

    /** {@code a * factor + offset} elementwise. */
    T affine(T a, double factor, double offset);

    /** {@code a * factor}. */
    default T scale(T a, double factor) {
        return affine(a, factor, 0.0);
    }

    /** {@code sum_k coefficients[k] * tensors[k]} (same shapes, at least one term). */
    T linearCombination(double[] coefficients, List<T> tensors);

    /**
     * {@link #linearCombination} with coefficients of each batch row's own: row {@code r} of the
     * result is {@code sum_k coefficients[k][r] * tensors[k][r]}; a term's array holds one
     * coefficient per row, or one for every row. Each row equals {@link #linearCombination} on that
     * row alone.
     */
    T rowLinearCombination(double[][] coefficients, List<T> tensors);

    /**
     * The DiT gated residual add {@code x + gate[:, None, :] * branch}.
     *
     * @param x tokens {@code [N, T, D]}
     * @param gate per-sample gate {@code [N, D]}
     * @param branch branch output {@code [N, T, D]}
     */
    T gatedAdd(T x, T gate, T branch);

    /** Elementwise {@code exp(a)}. */
    T exp(T a);

    /** Elementwise clamp into {@code [min, max]}. */
    T clamp(T a, double min, double max);

    // ---- slicing ------------------------------------------------------------------------

    /** Samples {@code [from, to)} along dimension 0 (e.g. the cond half of a CFG batch). */
    T sliceBatch(T a, long from, long to);

    /** Concatenation along dimension 0. */
    T concatBatch(List<T> parts);

    /** Channels {@code [from, to)} along dimension 1 (e.g. eps vs. variance channels). */
    T sliceChannels(T a, long from, long to);

    /** Concatenation along dimension 1. */
    T concatChannels(List<T> parts);

    /**
     * Rows {@code rows[0], rows[1], ...} of dimension 0, in that order (repeats allowed): the
     * sub-batch of the images that compute, or a reordering of rows.
     */
    T gatherRows(T a, int[] rows);

    /**
     * Rows {@code from, from + step, ...} below {@code to} of dimension 0 (e.g. the conditional
     * rows of a batch of interleaved conditional and unconditional pairs). An engine may return a
     * view that shares {@code a}'s memory.
     */
    default T sliceBatch(T a, long from, long to, long step) {
        TensorChecks.stridedRows(a.shape(), from, to, step);
        int[] rows = new int[(int) ((to - from + step - 1) / step)];
        for (int i = 0; i < rows.length; i++) {
            rows[i] = (int) (from + i * step);
        }
        return gatherRows(a, rows);
    }

    /** Each row of dimension 0 {@code times} times in a row: rows {@code 0, 0, 1, 1, ...} for 2. */
    default T repeatRows(T a, int times) {
        TensorChecks.repeatTimes(times);
        int n = (int) a.shape()[0];
        int[] rows = new int[n * times];
        for (int i = 0; i < rows.length; i++) {
            rows[i] = i / times;
        }
        return gatherRows(a, rows);
    }

    /**
     * {@code base} with its rows {@code at[i]} replaced by row {@code i} of {@code values}, as a
     * new tensor (one concatenation and one gather).
     */
    default T replaceRows(T base, int[] at, T values) {
        int rows = (int) base.shape()[0];
        int[] order = new int[rows];
        for (int r = 0; r < rows; r++) {
            order[r] = r;
        }
        for (int i = 0; i < at.length; i++) {
            order[at[i]] = rows + i;
        }
        try (T both = concatBatch(List.of(base, values))) {
            return gatherRows(both, order);
        }
    }

    /** {@code parts} (equal shapes) stacked along a new leading dimension. */
    T stack(List<T> parts);

    /**
     * The slices of {@code a} along its leading dimension, each without it: the inverse of
     * {@link #stack}. An engine may return views that share {@code a}'s memory.
     */
    List<T> unstack(T a);

    /**
     * Rows {@code rows[0], rows[1], ...} of dimension 1 of a stack {@code [S, N, ...]}, in that
     * order: the same rows of every stacked tensor (a run's rows of a stack of cached features).
     * By default a {@link #gatherRows} per slice, stacked again; an engine may take one op.
     * ({@link #concatChannels} joins stacks along the same dimension.)
     */
    default T gatherStackRows(T stack, int[] rows) {
        TensorChecks.gatherStackRows(stack.shape(), rows);
        List<T> slices = unstack(stack);
        List<T> picked = new ArrayList<>(slices.size());
        for (T slice : slices) {
            picked.add(gatherRows(slice, rows));
        }
        T out = stack(picked);
        picked.forEach(Tensor::close);
        slices.forEach(Tensor::close);
        return out;
    }

    // ---- reductions (return plain numbers, create no tensor) ----------------------------

    /**
     * For each row (index along dimension 0), the sum of {@code |a|} over all its elements:
     * per-image measurements that never mix two images.
     */
    double[] rowAbsSums(T a);
}
