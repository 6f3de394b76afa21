package dev.fora.core.model;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import java.util.List;
import java.util.Objects;

/**
 * A {@link DiTModel} that forwards every stage to another: extend it and override the stages
 * you want to observe or change (a recorder of branch outputs, a call counter).
 *
 * @param <T> tensor type
 */
public abstract class ForwardingDiT<T extends Tensor> implements DiTModel<T> {

    private final DiTModel<T> delegate;

    /** @param delegate the model every stage goes to */
    protected ForwardingDiT(DiTModel<T> delegate) {
        this.delegate = Objects.requireNonNull(delegate, "delegate");
    }

    /** The wrapped model. */
    public DiTModel<T> delegate() {
        return delegate;
    }

    @Override
    public DiTConfig config() {
        return delegate.config();
    }

    @Override
    public TensorOps<T> ops() {
        return delegate.ops();
    }

    @Override
    public Embedding<T> embed(T x, float[] timesteps, Conditioning conditioning) {
        return delegate.embed(x, timesteps, conditioning);
    }

    @Override
    public List<Modulation<T>> modulations(Embedding<T> embedding) {
        return delegate.modulations(embedding);
    }

    @Override
    public T branch(int block, int branch, T x, Modulation<T> modulation, Embedding<T> embedding) {
        return delegate.branch(block, branch, x, modulation, embedding);
    }

    @Override
    public T finalLayer(T x, Embedding<T> embedding) {
        return delegate.finalLayer(x, embedding);
    }

    @Override
    public Conditioning unconditional() {
        return delegate.unconditional();
    }

    @Override
    public T modulatedInput(int block, T x, Modulation<T> modulation) {
        return delegate.modulatedInput(block, x, modulation);
    }

    @Override
    public T addBranch(int branch, T x, Modulation<T> modulation, T feature) {
        return delegate.addBranch(branch, x, modulation, feature);
    }
}
