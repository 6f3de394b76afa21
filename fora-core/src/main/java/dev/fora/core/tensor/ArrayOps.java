package dev.fora.core.tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * {@link TensorOps} on plain Java float arrays: the reference implementation used by the
 * tests and the {@link dev.fora.core.testing policy test kit}.
 *
 * <p>It counts live tensors and their bytes ({@link #liveTensors()}, {@link #liveBytes()}),
 * so a test can assert that a generation released everything it created. Arithmetic is done
 * in double precision and rounded to float once per element.
 *
 * <p>Not thread-safe: use one instance per thread.
 */
public final class ArrayOps implements TensorOps<ArrayTensor> {

    private final ArrayScope root = new ArrayScope(null);
    private ArrayScope current = root;
    private long liveTensors;
    private long liveBytes;

    /** Number of tensors created and not yet released. */
    public long liveTensors() {
        return liveTensors;
    }

    /** Bytes held by tensors created and not yet released. */
    public long liveBytes() {
        return liveBytes;
    }

    /**
     * Wraps {@code data} without copying; the caller must not modify the array afterwards.
     * Meant for models written on plain arrays, such as the synthetic DiT.
     */
    public ArrayTensor wrap(int[] shape, float[] data) {
        int n = 1;
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            n *= d;
        }
        if (n != data.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " needs " + n
                    + " elements but got " + data.length);
        }
        ArrayTensor t = new ArrayTensor(this, shape.clone(), data);
        current.adopt(t);
        liveTensors++;
        liveBytes += t.sizeInBytes();
        return t;
    }

    /** Read-only access to the elements for code in the same engine (no copy). */
    public float[] read(ArrayTensor t) {
        return check(t).data();
    }

    void released(ArrayTensor t) {
        if (t.owner != null) {
            t.owner.tensors.remove(t);
            t.owner = null;
        }
        liveTensors--;
        liveBytes -= t.sizeInBytes();
    }

    // ---- scopes -------------------------------------------------------------------------

    /** A scope of {@link ArrayOps}. */
    final class ArrayScope implements TensorScope {
        private final ArrayScope parent;
        private final Set<ArrayTensor> tensors = new LinkedHashSet<>();
        private final List<ArrayScope> children = new ArrayList<>();
        private boolean closed;

        ArrayScope(ArrayScope parent) {
            this.parent = parent;
        }

        ArrayOps ops() {
            return ArrayOps.this;
        }

        void adopt(ArrayTensor t) {
            if (closed) {
                throw new IllegalStateException("cannot create or attach a tensor in a closed scope");
            }
            if (t.owner != null) {
                t.owner.tensors.remove(t);
            }
            t.owner = this;
            tensors.add(t);
        }

        @Override
        public boolean isClosed() {
            return closed;
        }

        @Override
        public void close() {
            if (closed) {
                return;
            }
            if (this == root) {
                throw new IllegalStateException("the root scope of ArrayOps cannot be closed");
            }
            for (ArrayScope child : new ArrayList<>(children)) {
                child.close();
            }
            for (ArrayTensor t : new ArrayList<>(tensors)) {
                t.close();
            }
            closed = true;
            if (parent != null) {
                parent.children.remove(this);
            }
            // If this scope (or a descendant, already closed above) was current, fall back to
            // the nearest open ancestor.
            while (current.closed) {
                current = current.parent;
            }
        }
    }

    @Override
    public TensorScope currentScope() {
        return current;
    }

    @Override
    public TensorScope openScope() {
        ArrayScope s = new ArrayScope(current);
        current.children.add(s);
        current = s;
        return s;
    }

    @Override
    public TensorScope newDetachedScope() {
        ArrayScope s = new ArrayScope(root);
        root.children.add(s);
        return s;
    }

    @Override
    public ArrayTensor attach(ArrayTensor tensor, TensorScope scope) {
        check(tensor);
        if (!(scope instanceof ArrayScope s) || s.ops() != this) {
            throw new IllegalArgumentException("scope does not belong to this ArrayOps");
        }
        s.adopt(tensor);
        return tensor;
    }

    // ---- creation -----------------------------------------------------------------------

    @Override
    public ArrayTensor fromFloats(long[] shape, float[] data) {
        return wrap(toInt(shape), data.clone());
    }

    @Override
    public float[] toFloats(ArrayTensor tensor) {
        return check(tensor).data().clone();
    }

    // ---- arithmetic ---------------------------------------------------------------------

    @Override
    public ArrayTensor add(ArrayTensor a, ArrayTensor b) {
        float[] x = sameShape(a, b, "add");
        float[] y = b.data();
        float[] r = new float[x.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = x[i] + y[i];
        }
        return wrap(a.dims(), r);
    }

    @Override
    public ArrayTensor sub(ArrayTensor a, ArrayTensor b) {
        float[] x = sameShape(a, b, "sub");
        float[] y = b.data();
        float[] r = new float[x.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = x[i] - y[i];
        }
        return wrap(a.dims(), r);
    }

    @Override
    public ArrayTensor mul(ArrayTensor a, ArrayTensor b) {
        float[] x = sameShape(a, b, "mul");
        float[] y = b.data();
        float[] r = new float[x.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = x[i] * y[i];
        }
        return wrap(a.dims(), r);
    }

    @Override
    public ArrayTensor affine(ArrayTensor a, double factor, double offset) {
        float[] x = check(a).data();
        float[] r = new float[x.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = (float) (x[i] * factor + offset);
        }
        return wrap(a.dims(), r);
    }

    @Override
    public ArrayTensor linearCombination(double[] coefficients, List<ArrayTensor> tensors) {
        TensorChecks.linearCombinationTerms(coefficients, tensors.size());
        return rowLinearCombination(TensorChecks.forEveryRow(coefficients), tensors);
    }

    /** Accumulated in double, each row with its own coefficients. */
    @Override
    public ArrayTensor rowLinearCombination(double[][] coefficients, List<ArrayTensor> tensors) {
        int rows = TensorChecks.rowLinearCombination(coefficients, tensors);
        ArrayTensor first = tensors.get(0);
        int n = check(first).length();
        int perRow = rows == 0 ? 0 : n / rows;
        double[] acc = new double[n];
        for (int k = 0; k < coefficients.length; k++) {
            float[] x = check(tensors.get(k)).data();
            double[] c = coefficients[k];
            for (int row = 0; row < rows; row++) {
                double cr = c.length == 1 ? c[0] : c[row];
                for (int i = row * perRow; i < (row + 1) * perRow; i++) {
                    acc[i] += cr * x[i];
                }
            }
        }
        float[] r = new float[n];
        for (int i = 0; i < n; i++) {
            r[i] = (float) acc[i];
        }
        return wrap(first.dims(), r);
    }

    @Override
    public ArrayTensor gatedAdd(ArrayTensor x, ArrayTensor gate, ArrayTensor branch) {
        sameShape(x, branch, "gatedAdd");
        check(gate);
        TensorChecks.gatedAddShapes(x.shape(), gate.shape());
        int n = x.dim(0);
        int t = x.dim(1);
        int d = x.dim(2);
        float[] xs = x.data();
        float[] gs = gate.data();
        float[] bs = branch.data();
        float[] r = new float[xs.length];
        for (int s = 0; s < n; s++) {
            for (int k = 0; k < t; k++) {
                int base = (s * t + k) * d;
                for (int j = 0; j < d; j++) {
                    r[base + j] = xs[base + j] + gs[s * d + j] * bs[base + j];
                }
            }
        }
        return wrap(x.dims(), r);
    }

    @Override
    public ArrayTensor exp(ArrayTensor a) {
        float[] x = check(a).data();
        float[] r = new float[x.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = (float) Math.exp(x[i]);
        }
        return wrap(a.dims(), r);
    }

    @Override
    public ArrayTensor clamp(ArrayTensor a, double min, double max) {
        TensorChecks.clampRange(min, max);
        float[] x = check(a).data();
        float[] r = new float[x.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = (float) Math.min(max, Math.max(min, x[i]));
        }
        return wrap(a.dims(), r);
    }

    // ---- slicing ------------------------------------------------------------------------

    @Override
    public ArrayTensor sliceBatch(ArrayTensor a, long from, long to) {
        return slice(a, 0, from, to);
    }

    @Override
    public ArrayTensor concatBatch(List<ArrayTensor> parts) {
        return concat(parts, 0);
    }

    @Override
    public ArrayTensor sliceChannels(ArrayTensor a, long from, long to) {
        return slice(a, 1, from, to);
    }

    @Override
    public ArrayTensor concatChannels(List<ArrayTensor> parts) {
        return concat(parts, 1);
    }

    private ArrayTensor slice(ArrayTensor a, int axis, long from, long to) {
        TensorChecks.sliceRange(check(a).shape(), axis, from, to);
        int size = a.dim(axis);
        int outer = 1;
        for (int i = 0; i < axis; i++) {
            outer *= a.dim(i);
        }
        int inner = a.length() / Math.max(1, outer * size);
        int len = (int) (to - from);
        float[] x = a.data();
        float[] r = new float[outer * len * inner];
        for (int o = 0; o < outer; o++) {
            System.arraycopy(x, (o * size + (int) from) * inner, r, o * len * inner, len * inner);
        }
        int[] dims = a.dims();
        dims[axis] = len;
        return wrap(dims, r);
    }

    private ArrayTensor concat(List<ArrayTensor> parts, int axis) {
        TensorChecks.concatShapes(parts, axis, p -> check(p).shape());
        int[] dims = parts.get(0).dims();
        int total = 0;
        for (ArrayTensor p : parts) {
            total += p.dim(axis);
        }
        int outer = 1;
        for (int i = 0; i < axis; i++) {
            outer *= dims[i];
        }
        int inner = 1;
        for (int i = axis + 1; i < dims.length; i++) {
            inner *= dims[i];
        }
        float[] r = new float[outer * total * inner];
        int offset = 0;
        for (ArrayTensor p : parts) {
            int len = p.dim(axis);
            float[] x = p.data();
            for (int o = 0; o < outer; o++) {
                System.arraycopy(x, o * len * inner, r, (o * total + offset) * inner, len * inner);
            }
            offset += len;
        }
        dims[axis] = total;
        return wrap(dims, r);
    }

    @Override
    public ArrayTensor gatherRows(ArrayTensor a, int[] rows) {
        TensorChecks.gatherRows(check(a).shape(), rows);
        int per = a.length() / a.dim(0);
        float[] x = a.data();
        float[] r = new float[rows.length * per];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(x, rows[i] * per, r, i * per, per);
        }
        int[] dims = a.dims();
        dims[0] = rows.length;
        return wrap(dims, r);
    }

    @Override
    public ArrayTensor stack(List<ArrayTensor> parts) {
        if (parts.isEmpty()) {
            throw new IllegalArgumentException("stack needs at least one tensor");
        }
        long[] shape = check(parts.get(0)).shape();
        for (ArrayTensor p : parts) {
            TensorChecks.sameShape(shape, check(p).shape(), "stack");
        }
        int per = parts.get(0).length();
        float[] r = new float[parts.size() * per];
        for (int i = 0; i < parts.size(); i++) {
            System.arraycopy(parts.get(i).data(), 0, r, i * per, per);
        }
        int[] inner = parts.get(0).dims();
        int[] dims = new int[inner.length + 1];
        dims[0] = parts.size();
        System.arraycopy(inner, 0, dims, 1, inner.length);
        return wrap(dims, r);
    }

    @Override
    public List<ArrayTensor> unstack(ArrayTensor a) {
        check(a);
        if (a.rank() == 0) {
            throw new IllegalArgumentException("unstack needs a leading dimension");
        }
        int[] dims = a.dims();
        int[] inner = java.util.Arrays.copyOfRange(dims, 1, dims.length);
        int n = dims[0];
        int per = n == 0 ? 0 : a.length() / n;
        List<ArrayTensor> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            float[] r = new float[per];
            System.arraycopy(a.data(), i * per, r, 0, per);
            out.add(wrap(inner, r));
        }
        return out;
    }

    // ---- reductions ---------------------------------------------------------------------

    @Override
    public double[] rowAbsSums(ArrayTensor a) {
        float[] x = check(a).data();
        int n = a.rank() == 0 ? 1 : a.dim(0);
        int per = n == 0 ? 0 : x.length / n;
        double[] sums = new double[n];
        for (int row = 0; row < n; row++) {
            double s = 0;
            for (int i = row * per; i < (row + 1) * per; i++) {
                s += Math.abs(x[i]);
            }
            sums[row] = s;
        }
        return sums;
    }

    // ---- helpers ------------------------------------------------------------------------

    private ArrayTensor check(ArrayTensor t) {
        Objects.requireNonNull(t, "tensor");
        if (t.ops() != this) {
            throw new IllegalArgumentException("tensor " + t + " was created by another ArrayOps instance");
        }
        t.data(); // throws if released
        return t;
    }

    private float[] sameShape(ArrayTensor a, ArrayTensor b, String op) {
        TensorChecks.sameShape(check(a).shape(), check(b).shape(), op);
        return a.data();
    }

    private static int[] toInt(long[] shape) {
        int[] r = new int[shape.length];
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] < 0 || shape[i] > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("bad dimension in shape " + Arrays.toString(shape));
            }
            r[i] = (int) shape[i];
        }
        return r;
    }
}
