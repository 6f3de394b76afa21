/**
 * The engine-independent tensor interface: {@link dev.fora.core.tensor.Tensor} handles,
 * {@link dev.fora.core.tensor.TensorOps} (out-of-place operations whose results land in the
 * current {@link dev.fora.core.tensor.TensorScope}), and the plain-Java reference
 * implementation {@link dev.fora.core.tensor.ArrayOps}, which counts live tensors.
 */
package dev.fora.core.tensor;
