package dev.fora.core.tensor;

import java.util.Arrays;

/**
 * A {@link Tensor} on a plain {@code float[]} with a shape, created by {@link ArrayOps}.
 */
public final class ArrayTensor implements Tensor {

    private final int[] dims;
    private float[] data;
    private final ArrayOps ops;
    ArrayOps.ArrayScope owner;

    ArrayTensor(ArrayOps ops, int[] dims, float[] data) {
        this.ops = ops;
        this.dims = dims;
        this.data = data;
    }

    @Override
    public long[] shape() {
        long[] s = new long[dims.length];
        for (int i = 0; i < dims.length; i++) {
            s[i] = dims[i];
        }
        return s;
    }

    /** The shape as ints (a copy). */
    public int[] dims() {
        return dims.clone();
    }

    ArrayOps ops() {
        return ops;
    }

    int dim(int i) {
        return dims[i];
    }

    int rank() {
        return dims.length;
    }

    @Override
    public long sizeInBytes() {
        return 4L * length();
    }

    int length() {
        int n = 1;
        for (int d : dims) {
            n *= d;
        }
        return n;
    }

    /** Elements for reading inside this package; throws if released. */
    float[] data() {
        if (data == null) {
            throw new IllegalStateException("tensor " + Arrays.toString(dims) + " was already released");
        }
        return data;
    }

    @Override
    public boolean isReleased() {
        return data == null;
    }

    @Override
    public void close() {
        if (data != null) {
            ops.released(this);
            data = null;
        }
    }

    @Override
    public String toString() {
        return "ArrayTensor" + Arrays.toString(dims) + (data == null ? " (released)" : "");
    }
}
