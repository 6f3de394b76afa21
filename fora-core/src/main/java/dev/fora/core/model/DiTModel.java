package dev.fora.core.model;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.List;

/**
 * A Diffusion Transformer split into the stages a feature cache must stand between.
 *
 * <p>Every block runs the branches of its {@link BlockLayout} in order; for each branch
 * <pre>
 *   F = branch(block, i, x, modulation, embedding)   // e.g. attn(modulate(LN(x), shift, scale))
 *   x = x + gate[:, None, :] * F                      // gated branch, done by the core
 *   x = x + F                                         // ungated branch (PixArt-α cross-attention)
 * </pre>
 * {@code F} (before gating) is the cacheable feature. Implementations return new tensors in
 * the current scope of {@link #ops()}, never keep references to them and never modify their
 * inputs. Every stage works row by row: row {@code r} of an output depends only on row
 * {@code r} of the inputs, so the core may call a stage on any sub-batch of rows.
 *
 * <p><b>One generation at a time.</b> A {@link TensorOps} instance tracks one current scope
 * and a model's outputs go into it, so one model instance serves one generation at a time,
 * from one thread. Give each concurrent generation its own instance (the weights can still
 * be shared); in {@code fora-djl}, {@code DiTPipeline.newDiT()} hands out such views.
 *
 * @param <T> tensor type of the engine
 */
public interface DiTModel<T extends Tensor> {

    /** Model shape, block layout and conditioning kind. */
    DiTConfig config();

    /** The tensor operations of the engine this model runs on. */
    TensorOps<T> ops();

    /**
     * Patch, timestep and condition embedding.
     *
     * @param x latent {@code [N, C, H, W]}
     * @param timesteps the ORIGINAL (un-respaced) diffusion timestep of each row
     * @param conditioning one row per latent row, of the model's {@link DiTConfig#conditioning()} kind
     */
    Embedding<T> embed(T x, float[] timesteps, Conditioning conditioning);

    /** Every block's modulation vectors, from the embedding's conditioning. */
    List<Modulation<T>> modulations(Embedding<T> embedding);

    /**
     * Branch {@code branch} of block {@code block}: its output before the gate, {@code [N, T, D]}.
     *
     * @param x the block's running tokens {@code [N, T, D]} when the branch starts
     * @param modulation the block's modulation vectors for these rows
     * @param embedding the step's embedding for these rows (cross-attention reads its context)
     */
    T branch(int block, int branch, T x, Modulation<T> modulation, Embedding<T> embedding);

    /** Final adaLN layer, linear projection and unpatchify: {@code [N, outC, H, W]}. */
    T finalLayer(T x, Embedding<T> embedding);

    /**
     * The unconditional value of one row: the null class, or the embedding of the empty
     * caption. Classifier-free guidance appends it. The default serves class-conditional
     * models.
     */
    default Conditioning unconditional() {
        if (config().conditioning() instanceof ConditioningSpec.Classes classes) {
            return classes.unconditional();
        }
        throw new UnsupportedOperationException(getClass().getSimpleName() + " has no unconditional text embedding");
    }

    /**
     * The unconditional rows classifier-free guidance appends to a batch of {@code conditioning}
     * (one per row, in order). The default is {@code n} copies of {@link #unconditional()}; a text
     * model may keep each prompt's token mask on its empty caption, as PixArt-α's samplers do.
     */
    default Conditioning unconditionalFor(Conditioning conditioning) {
        return unconditional().repeat(0, conditioning.size());
    }

    /**
     * The modulated input {@code modulate(LN(x), shift, scale)} of block {@code block}'s first
     * branch: the measurement TeaCache-style policies compare across steps. Optional; only
     * called when a policy declares
     * {@link dev.fora.core.cache.Measurement.ModulatedInputChange}.
     */
    default T modulatedInput(int block, T x, Modulation<T> modulation) {
        throw new UnsupportedOperationException(getClass().getSimpleName()
                + " does not expose the modulated block input a ModulatedInputChange measurement needs");
    }

    /** The model's fused steps, if its engine has them; none by default (every step runs the stages). */
    default java.util.Optional<FusedSteps<T>> fusedSteps() {
        return java.util.Optional.empty();
    }

    /**
     * The residual add of a branch: {@code x + gate[:, None, :] * feature} for a gated branch,
     * {@code x + feature} otherwise.
     */
    default T addBranch(int branch, T x, Modulation<T> modulation, T feature) {
        BranchSpec spec = config().layout().branch(branch);
        return spec.gated() ? ops().gatedAdd(x, modulation.vector(spec.gate()), feature) : ops().add(x, feature);
    }

    /**
     * The plain, uncached forward pass, built from the stages in the same order as a cached
     * generation (so a policy that always computes reproduces it bit for bit). The result is
     * in the current scope.
     */
    default T forward(T x, float[] timesteps, Conditioning conditioning) {
        TensorOps<T> ops = ops();
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
            Embedding<T> e = embed(x, timesteps, conditioning);
            List<Modulation<T>> mods = modulations(e);
            T h = e.tokens();
            for (int b = 0; b < config().depth(); b++) {
                Modulation<T> m = mods.get(b);
                for (int i = 0; i < config().branches(); i++) {
                    T f = branch(b, i, h, m, e);
                    T next = addBranch(i, h, m, f);
                    f.close();
                    h.close();
                    h = next;
                }
            }
            return ops.attach(finalLayer(h, e), outer);
        }
    }
}
