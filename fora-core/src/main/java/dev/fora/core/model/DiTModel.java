package dev.fora.core.model;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.ArrayList;
import java.util.List;

/**
 * A Diffusion Transformer split into the stages a feature cache must stand between.
 *
 * <p>A block computes
 * <pre>
 *   A  = attention(x, shift1, scale1)      // attn(modulate(LN(x), shift1, scale1))
 *   x' = x + gate1[:, None, :] * A         // gated residual add, done by the core
 *   M  = mlp(x', shift2, scale2)           // mlp(modulate(LN(x'), shift2, scale2))
 *   x''= x' + gate2[:, None, :] * M
 * </pre>
 * {@code A} and {@code M} (before gating) are the cacheable features. Implementations
 * return new tensors in the current scope of {@link #ops()} and never keep references to
 * them; they must not modify their inputs.
 *
 * <p><b>One generation at a time.</b> A {@link TensorOps} instance tracks one current scope
 * (the scope stack that {@link TensorOps#openScope()} pushes and the sampler and cache open
 * and close per step), and a model's outputs go into the current scope of its
 * {@link #ops()}. So one model instance serves one generation at a time, from one thread:
 * two generations (or threads) interleaving on the same instance would put each other's
 * tensors in the wrong scope. To run generations concurrently, give each its own model
 * instance with its own {@code TensorOps}; the weights can still be shared. In
 * {@code fora-djl}, {@code DiTPipeline.newDiT()} hands out such a cheap per-generation
 * {@code TorchScriptDiT} over the pipeline's single loaded module (and
 * {@code DiTPipeline.generate} does this for you).
 *
 * @param <T> tensor type of the engine
 */
public interface DiTModel<T extends Tensor> {

    /** Model sizes. */
    DiTConfig config();

    /** The tensor operations of the engine this model runs on. */
    TensorOps<T> ops();

    /**
     * Patch and condition embedding.
     *
     * @param x latent {@code [N, C, H, W]}
     * @param timesteps the ORIGINAL (un-respaced) diffusion timestep of each sample
     * @param labels class label of each sample ({@link DiTConfig#nullLabel()} for unconditional)
     */
    Embedding<T> embed(T x, float[] timesteps, int[] labels);

    /** The adaLN modulation of one block from the conditioning {@code c [N, D]}. */
    Modulation<T> modulation(int block, T c);

    /**
     * The modulations of all blocks. Engines that compute all blocks' adaLN in one call
     * override this and hand out slices; the default calls {@link #modulation} per block.
     */
    default List<Modulation<T>> modulations(T c) {
        List<Modulation<T>> all = new ArrayList<>(config().depth());
        for (int b = 0; b < config().depth(); b++) {
            all.add(modulation(b, c));
        }
        return all;
    }

    /** Attention branch output before gating, {@code [N, T, D]} (includes LayerNorm and modulate). */
    T attention(int block, T x, T shift1, T scale1);

    /** MLP branch output before gating, {@code [N, T, D]} (includes LayerNorm and modulate). */
    T mlp(int block, T x, T shift2, T scale2);

    /** Final adaLN layer, linear projection and unpatchify: {@code [N, outC, H, W]}. */
    T finalLayer(T x, T c);

    /**
     * The modulated input {@code modulate(LN(x), shift1, scale1)} of a block: the signal
     * TeaCache-style policies compare across steps. Optional; the default throws
     * {@link UnsupportedOperationException}. It is only called when a policy asks for
     * {@link dev.fora.core.cache.Signal#MODULATED_INPUT_CHANGE}.
     */
    default T modulatedInput(int block, T x, T shift1, T scale1) {
        throw new UnsupportedOperationException(getClass().getSimpleName()
                + " does not expose the modulated block input needed by MODULATED_INPUT_CHANGE");
    }

    /**
     * The plain, uncached forward pass, built from the stages in the same order as the
     * cached forward (so a cache that always computes reproduces it bit for bit).
     * Intermediates are released as soon as they are used; the result is in the current scope.
     */
    default T forward(T x, float[] timesteps, int[] labels) {
        TensorOps<T> ops = ops();
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
            Embedding<T> e = embed(x, timesteps, labels);
            List<Modulation<T>> mods = modulations(e.conditioning());
            T h = e.tokens();
            for (int b = 0; b < config().depth(); b++) {
                Modulation<T> m = mods.get(b);
                T a = attention(b, h, m.shift1(), m.scale1());
                T h1 = ops.gatedAdd(h, m.gate1(), a);
                a.close();
                h.close();
                T mo = mlp(b, h1, m.shift2(), m.scale2());
                h = ops.gatedAdd(h1, m.gate2(), mo);
                mo.close();
                h1.close();
            }
            return ops.attach(finalLayer(h, e.conditioning()), outer);
        }
    }
}
