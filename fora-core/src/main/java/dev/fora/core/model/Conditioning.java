package dev.fora.core.model;

/**
 * What an image is conditioned on, one row per model batch row: class labels
 * ({@link ClassLabels}) or text-token embeddings with a mask ({@link TextEmbeddings}). Plain
 * host data: gathering rows for a sub-batch or appending the unconditional half for
 * classifier-free guidance never touches the engine. A model's
 * {@link DiTConfig#conditioning()} says which kind it takes and checks values against it.
 */
public sealed interface Conditioning permits ClassLabels, TextEmbeddings {

    /** Number of rows. */
    int size();

    /** The rows {@code rows[0], rows[1], ...} (repeats allowed), as a new value of the same kind. */
    Conditioning rows(int[] rows);

    /**
     * This value's rows followed by {@code other}'s.
     *
     * @throws IllegalArgumentException if {@code other} is of another kind or size per row
     */
    Conditioning concat(Conditioning other);

    /** {@code n} copies of row {@code row}. */
    default Conditioning repeat(int row, int n) {
        int[] rows = new int[n];
        java.util.Arrays.fill(rows, row);
        return rows(rows);
    }
}
