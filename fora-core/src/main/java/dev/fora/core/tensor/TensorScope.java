package dev.fora.core.tensor;

/**
 * An arena that owns tensors and releases them all when closed, like a DJL
 * {@code NDManager} sub-manager.
 *
 * <p>Scopes form a tree. Closing a scope closes its child scopes and releases every tensor
 * that still belongs to it. A tensor that must outlive a scope (a cache entry, the latent
 * carried to the next step) is moved out explicitly with
 * {@link TensorOps#attach(Tensor, TensorScope)} before the scope closes.
 *
 * @see TensorOps#openScope()
 * @see TensorOps#newDetachedScope()
 */
public interface TensorScope extends AutoCloseable {

    /** Whether this scope has been closed. */
    boolean isClosed();

    /** Releases every tensor and child scope it owns. Idempotent. */
    @Override
    void close();
}
