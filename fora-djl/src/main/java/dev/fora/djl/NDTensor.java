package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import dev.fora.core.tensor.Tensor;
import java.util.Objects;

/**
 * A core {@link Tensor} backed by a DJL {@link NDArray}. Its lifetime is the NDArray's: it is
 * released when the array is closed, directly or by closing the {@link ai.djl.ndarray.NDManager}
 * (the {@link NDArrayOps} scope) that owns it.
 */
public final class NDTensor implements Tensor {

    private final NDArray array;

    NDTensor(NDArray array) {
        this.array = Objects.requireNonNull(array, "array");
    }

    /** The NDArray (owned by the tensor's scope; do not close it unless you own the tensor). */
    public NDArray array() {
        return array;
    }

    @Override
    public long[] shape() {
        return array.getShape().getShape();
    }

    @Override
    public long size() {
        return array.size();
    }

    @Override
    public long sizeInBytes() {
        DataType type = array.getDataType();
        // DJL 0.36 reports the bfloat16 tensors TorchScript returns as UNKNOWN; they are the only
        // such tensors here (the bf16 model variant), 2 bytes per element.
        return array.size() * (type == DataType.UNKNOWN ? 2 : type.getNumOfBytes());
    }

    @Override
    public boolean isReleased() {
        return array.isReleased();
    }

    @Override
    public void close() {
        if (!array.isReleased()) {
            array.close();
        }
    }

    @Override
    public String toString() {
        return "NDTensor" + array.getShape() + (isReleased() ? " (released)" : "");
    }
}
