package dev.fora.core.model;

import dev.fora.core.tensor.Tensor;

/**
 * What a DiT's embedder produces for one step.
 *
 * @param tokens patch tokens plus position embedding {@code [N, T, D]}
 * @param conditioning the adaLN conditioning {@code [N, D]} (DiT: {@code t_embed(t) + y_embed(y)};
 *     PixArt-α: the timestep embedding)
 * @param context the tokens cross-attention reads {@code [N, L, D]}, or null for a model without cross-attention
 * @param contextMask {@code [N, L]}, 1 for a real context token and 0 for padding, or null
 * @param <T> tensor type
 */
public record Embedding<T extends Tensor>(T tokens, T conditioning, T context, T contextMask) {

    /** An embedding without cross-attention context. */
    public Embedding(T tokens, T conditioning) {
        this(tokens, conditioning, null, null);
    }
}
