package dev.fora.core.model;

import dev.fora.core.tensor.Tensor;

/**
 * The six adaLN-Zero vectors of one block, each {@code [N, D]}: {@code Linear(SiLU(c)).chunk(6)}.
 * The gates are recomputed every step from the current {@code c}, even when the branch
 * outputs are reused from the cache.
 *
 * @param <T> tensor type
 */
public record Modulation<T extends Tensor>(T shift1, T scale1, T gate1, T shift2, T scale2, T gate2) {
}
