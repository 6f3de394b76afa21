package dev.fora.core.model;

import dev.fora.core.tensor.Tensor;

/**
 * What the DiT embedder produces.
 *
 * @param tokens patch tokens plus position embedding {@code [N, T, D]}
 * @param conditioning {@code c = t_embed(t) + y_embed(y)}, {@code [N, D]}
 * @param <T> tensor type
 */
public record Embedding<T extends Tensor>(T tokens, T conditioning) {
}
