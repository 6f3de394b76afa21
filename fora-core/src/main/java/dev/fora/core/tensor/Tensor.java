package dev.fora.core.tensor;

/**
 * An opaque handle to an engine-owned array of 32-bit floats.
 *
 * <p>The core never reads tensor memory directly: every computation goes through
 * {@link TensorOps}. A tensor belongs to exactly one {@link TensorScope} at a time and is
 * released when that scope closes, or earlier by {@link #close()}. Releasing matters for
 * engines with native memory (DJL NDArrays), where the garbage collector does not see the
 * real size of an array.
 *
 * <p>Tensors handed to the core are never modified in place; every operation returns a new
 * tensor.
 */
public interface Tensor extends AutoCloseable {

    /** The shape, outermost dimension first (a copy). */
    long[] shape();

    /** Number of elements (product of the shape). */
    default long size() {
        long n = 1;
        for (long d : shape()) {
            n *= d;
        }
        return n;
    }

    /** Memory held by this tensor's elements, in bytes. */
    long sizeInBytes();

    /** Whether {@link #close()} has been called (directly or through its scope). */
    boolean isReleased();

    /** Releases the tensor's memory and detaches it from its scope. Idempotent. */
    @Override
    void close();
}
