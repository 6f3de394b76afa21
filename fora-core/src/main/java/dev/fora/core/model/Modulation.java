package dev.fora.core.model;

import dev.fora.core.tensor.Tensor;
import java.util.List;

/**
 * The adaLN modulation vectors of one block, each {@code [N, D]}, named by the model's
 * {@link BlockLayout#modulation()}. They are recomputed every step from the current
 * conditioning, so a reused branch still gets the current step's gate.
 *
 * @param vectors the vectors, in layout order
 * @param <T> tensor type
 */
public record Modulation<T extends Tensor>(List<T> vectors) {

    /** Copies the list. */
    public Modulation {
        vectors = List.copyOf(vectors);
    }

    /** Vector {@code index} of the layout. */
    public T vector(int index) {
        return vectors.get(index);
    }
}
