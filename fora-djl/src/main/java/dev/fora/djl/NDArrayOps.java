package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.fora.core.tensor.TensorChecks;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * The core {@link TensorOps} on DJL NDArrays, with scopes as {@link NDManager}s.
 *
 * <p>An instance is rooted at one manager (its root scope); {@link #openScope()} makes a
 * sub-manager current, {@link #newDetachedScope()} makes a sub-manager of the root that never
 * becomes current (the feature cache lives there). Every array an operation creates is
 * attached to the current scope's manager, whatever manager its inputs belong to.
 * Closing the root scope ({@link #close()}) releases everything the instance created.
 *
 * <p>All arithmetic is out of place and in float32, like the PyTorch reference. An instance
 * tracks one current scope: use it from one thread at a time (one instance per generation).
 */
public final class NDArrayOps implements TensorOps<NDTensor>, AutoCloseable {

    private final Scope root;
    private Scope current;

    /**
     * An instance whose root scope is a new sub-manager of {@code parent}.
     *
     * @param parent a PyTorch manager (the model's, typically)
     */
    public NDArrayOps(NDManager parent) {
        NDManager m = Objects.requireNonNull(parent, "parent").newSubManager();
        m.setName("fora-ops");
        this.root = new Scope(null, m);
        this.current = root;
    }

    /** A DJL scope: one manager, its parent scope, and the child scopes opened under it. */
    final class Scope implements TensorScope {
        private final Scope parent;
        private final NDManager manager;
        private final List<Scope> children = new ArrayList<>();
        private boolean closed;

        Scope(Scope parent, NDManager manager) {
            this.parent = parent;
            this.manager = manager;
        }

        /** The manager that owns this scope's arrays. */
        NDManager manager() {
            return manager;
        }

        NDArrayOps ops() {
            return NDArrayOps.this;
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
            for (Scope child : new ArrayList<>(children)) {
                child.close();
            }
            closed = true;
            manager.close();
            if (parent != null) {
                parent.children.remove(this);
            }
            while (current != null && current.closed) {
                current = current.parent;
            }
        }

        @Override
        public String toString() {
            return "NDArrayOps.Scope[" + manager.getName() + (closed ? ", closed" : "") + "]";
        }
    }

    // ---- scopes and ownership -------------------------------------------------------------

    @Override
    public TensorScope currentScope() {
        return checkedCurrent();
    }

    /** The manager of the current scope: where new arrays go. */
    public NDManager currentManager() {
        return checkedCurrent().manager;
    }

    /** The root scope: closing it (or this instance) releases everything created here. */
    public TensorScope rootScope() {
        return root;
    }

    /** The manager of the root scope. */
    public NDManager rootManager() {
        return root.manager;
    }

    private Scope checkedCurrent() {
        if (current == null || current.closed) {
            throw new IllegalStateException("these NDArrayOps are closed");
        }
        return current;
    }

    @Override
    public TensorScope openScope() {
        Scope parent = checkedCurrent();
        Scope s = new Scope(parent, parent.manager.newSubManager());
        parent.children.add(s);
        current = s;
        return s;
    }

    @Override
    public TensorScope newDetachedScope() {
        checkedCurrent();
        Scope s = new Scope(root, root.manager.newSubManager());
        root.children.add(s);
        return s;
    }

    @Override
    public NDTensor attach(NDTensor tensor, TensorScope scope) {
        check(tensor);
        if (!(scope instanceof Scope s) || s.ops() != this) {
            throw new IllegalArgumentException("scope " + scope + " does not belong to these NDArrayOps");
        }
        if (s.closed) {
            throw new IllegalStateException("cannot attach a tensor to a closed scope");
        }
        tensor.array().attach(s.manager);
        return tensor;
    }

    /**
     * Views an NDArray the caller owns as a tensor, without moving it: the core reads it but
     * never closes it (it stays in its own manager).
     */
    public NDTensor wrap(NDArray array) {
        if (array.isReleased()) {
            throw new IllegalStateException("the NDArray has been closed");
        }
        return new NDTensor(array);
    }

    /** Makes a new array produced by DJL part of the current scope. */
    NDTensor own(NDArray array) {
        array.attach(currentManager());
        return new NDTensor(array);
    }

    /** Releases everything created through this instance (the root scope). Idempotent. */
    @Override
    public void close() {
        root.close();
        current = null;
    }

    /** Whether {@link #close()} was called. */
    public boolean isClosed() {
        return root.closed;
    }

    // ---- creation and read-back -----------------------------------------------------------

    @Override
    public NDTensor fromFloats(long[] shape, float[] data) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            n *= d;
        }
        if (n != data.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " needs " + n + " elements but got "
                    + data.length);
        }
        return new NDTensor(currentManager().create(data, new Shape(shape)));
    }

    /** A new int64 tensor (labels). */
    NDArray longs(long[] data) {
        return currentManager().create(data);
    }

    /** The values as float32; a bfloat16 tensor (a bf16 model's features) is widened, which is exact. */
    @Override
    public float[] toFloats(NDTensor tensor) {
        NDArray a = check(tensor).array();
        if (a.getDataType() == DataType.FLOAT32) {
            return a.toFloatArray();
        }
        if (!a.getDataType().isFloating() && a.getDataType() != DataType.UNKNOWN) { // bfloat16 may read as unknown
            throw new IllegalArgumentException("expected a floating-point tensor, got " + a.getDataType());
        }
        try (NDArray wide = a.toType(DataType.FLOAT32, false)) {
            return wide.toFloatArray();
        }
    }

    // ---- elementwise arithmetic ------------------------------------------------------------

    @Override
    public NDTensor add(NDTensor a, NDTensor b) {
        sameShape(a, b, "add");
        return own(a.array().add(b.array()));
    }

    @Override
    public NDTensor sub(NDTensor a, NDTensor b) {
        sameShape(a, b, "sub");
        return own(a.array().sub(b.array()));
    }

    @Override
    public NDTensor mul(NDTensor a, NDTensor b) {
        sameShape(a, b, "mul");
        return own(a.array().mul(b.array()));
    }

    @Override
    public NDTensor affine(NDTensor a, double factor, double offset) {
        NDArray x = check(a).array();
        if (offset == 0.0) {
            return own(x.mul((float) factor));
        }
        try (NDArray scaled = x.mul((float) factor)) {
            return own(scaled.add((float) offset));
        }
    }

    @Override
    public NDTensor scale(NDTensor a, double factor) {
        return own(check(a).array().mul((float) factor));
    }

    @Override
    public NDTensor linearCombination(double[] coefficients, List<NDTensor> tensors) {
        TensorChecks.linearCombinationTerms(coefficients, tensors.size());
        return rowLinearCombination(TensorChecks.forEveryRow(coefficients), tensors);
    }

    /**
     * As {@link #linearCombination}, a term whose rows differ multiplied by a {@code [N, 1, ...]}
     * array of its float coefficients: each element takes the same float product and sums as there.
     */
    @Override
    public NDTensor rowLinearCombination(double[][] coefficients, List<NDTensor> tensors) {
        for (NDTensor t : tensors) {
            check(t);
        }
        int rows = TensorChecks.rowLinearCombination(coefficients, tensors);
        double[] alike = TensorChecks.alikeForEveryRow(coefficients);
        if (alike != null) {
            coefficients = TensorChecks.forEveryRow(alike); // a float scalar per term: the same products, no per-row array
        }
        long[] shape = tensors.get(0).shape();
        long[] column = new long[shape.length];
        Arrays.fill(column, 1);
        column[0] = rows;
        NDArray acc = null;
        for (int k = 0; k < coefficients.length; k++) {
            NDArray term;
            if (coefficients[k].length == 1) {
                term = tensors.get(k).array().mul((float) coefficients[k][0]);
            } else {
                float[] c = new float[rows];
                for (int r = 0; r < rows; r++) {
                    c[r] = (float) coefficients[k][r];
                }
                try (NDArray perRow = currentManager().create(c, new Shape(column))) {
                    term = tensors.get(k).array().mul(perRow);
                }
            }
            if (acc == null) {
                acc = term;
            } else {
                try (NDArray t = term) {
                    NDArray next = acc.add(t);
                    acc.close();
                    acc = next;
                }
            }
        }
        return own(acc);
    }

    @Override
    public NDTensor gatedAdd(NDTensor x, NDTensor gate, NDTensor branch) {
        sameShape(x, branch, "gatedAdd");
        check(gate);
        TensorChecks.gatedAddShapes(x.shape(), gate.shape());
        try (NDArray g = gate.array().expandDims(1); NDArray gated = g.mul(branch.array())) {
            return own(x.array().add(gated));
        }
    }

    @Override
    public NDTensor exp(NDTensor a) {
        return own(check(a).array().exp());
    }

    @Override
    public NDTensor clamp(NDTensor a, double min, double max) {
        TensorChecks.clampRange(min, max);
        return own(check(a).array().clip((float) min, (float) max));
    }

    // ---- slicing ---------------------------------------------------------------------------

    @Override
    public NDTensor sliceBatch(NDTensor a, long from, long to) {
        return slice(a, 0, from, to);
    }

    @Override
    public NDTensor concatBatch(List<NDTensor> parts) {
        return concat(parts, 0);
    }

    @Override
    public NDTensor sliceChannels(NDTensor a, long from, long to) {
        return slice(a, 1, from, to);
    }

    @Override
    public NDTensor concatChannels(List<NDTensor> parts) {
        return concat(parts, 1);
    }

    private NDTensor slice(NDTensor a, int axis, long from, long to) {
        TensorChecks.sliceRange(check(a).shape(), axis, from, to);
        NDIndex index = new NDIndex();
        for (int d = 0; d < axis; d++) {
            index.addAllDim();
        }
        index.addSliceDim(from, to);
        return own(a.array().get(index));
    }

    private NDTensor concat(List<NDTensor> parts, int axis) {
        TensorChecks.concatShapes(parts, axis, p -> check(p).shape());
        if (parts.size() == 1) {
            return own(parts.get(0).array().duplicate());
        }
        NDList list = new NDList(parts.size());
        for (NDTensor p : parts) {
            list.add(p.array());
        }
        return own(NDArrays.concat(list, axis));
    }

    @Override
    public NDTensor gatherRows(NDTensor a, int[] rows) {
        TensorChecks.gatherRows(check(a).shape(), rows);
        return indexed(a, "{}", rows);
    }

    /** One index op along dimension 1. */
    @Override
    public NDTensor gatherStackRows(NDTensor stack, int[] rows) {
        TensorChecks.gatherStackRows(check(stack).shape(), rows);
        return indexed(stack, ":, {}", rows);
    }

    /** {@code a} indexed by {@code pattern}, whose {@code {}} takes {@code rows} as an index array. */
    private NDTensor indexed(NDTensor a, String pattern, int[] rows) {
        long[] index = new long[rows.length];
        for (int i = 0; i < rows.length; i++) {
            index[i] = rows[i];
        }
        try (NDArray idx = currentManager().create(index)) {
            return own(a.array().get(new NDIndex(pattern, idx)));
        }
    }

    /** A strided view of {@code a}'s rows. */
    @Override
    public NDTensor sliceBatch(NDTensor a, long from, long to, long step) {
        TensorChecks.stridedRows(check(a).shape(), from, to, step);
        return own(a.array().get(new NDIndex().addSliceDim(from, to, step)));
    }

    @Override
    public NDTensor repeatRows(NDTensor a, int times) {
        TensorChecks.repeatTimes(times);
        return own(check(a).array().repeat(0, times));
    }

    @Override
    public NDTensor stack(List<NDTensor> parts) {
        if (parts.isEmpty()) {
            throw new IllegalArgumentException("stack needs at least one tensor");
        }
        NDList list = new NDList(parts.size());
        for (NDTensor p : parts) {
            TensorChecks.sameShape(check(parts.get(0)).shape(), check(p).shape(), "stack");
            list.add(p.array());
        }
        return own(NDArrays.stack(list, 0));
    }

    /** Views of {@code a}'s slices: they share its memory (libtorch keeps it alive while any view is). */
    @Override
    public List<NDTensor> unstack(NDTensor a) {
        NDArray x = check(a).array();
        long n = x.getShape().get(0);
        List<NDTensor> out = new ArrayList<>((int) n);
        for (long i = 0; i < n; i++) {
            out.add(own(x.get(i)));
        }
        return out;
    }

    // ---- reductions --------------------------------------------------------------------------

    @Override
    public double[] rowAbsSums(NDTensor a) {
        NDArray x = check(a).array();
        long[] shape = x.getShape().getShape();
        if (shape.length == 0) {
            throw new IllegalArgumentException("rowAbsSums needs a tensor with a batch dimension");
        }
        int[] inner = new int[shape.length - 1];
        for (int i = 0; i < inner.length; i++) {
            inner[i] = i + 1;
        }
        float[] sums;
        try (NDArray abs = x.abs(); NDArray s = inner.length == 0 ? abs.duplicate() : abs.sum(inner);
             NDArray f = s.toType(DataType.FLOAT32, false)) {
            sums = f.toFloatArray();
        }
        double[] out = new double[sums.length];
        for (int i = 0; i < sums.length; i++) {
            out[i] = sums[i];
        }
        return out;
    }

    // ---- checks ------------------------------------------------------------------------------

    static NDTensor check(NDTensor t) {
        Objects.requireNonNull(t, "tensor");
        if (t.isReleased()) {
            throw new IllegalStateException("tensor " + t + " has been released");
        }
        return t;
    }

    private static void sameShape(NDTensor a, NDTensor b, String op) {
        TensorChecks.sameShape(check(a).shape(), check(b).shape(), op);
    }
}
