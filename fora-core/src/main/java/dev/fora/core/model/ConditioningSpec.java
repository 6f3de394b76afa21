package dev.fora.core.model;

/**
 * The kind of {@link Conditioning} a model takes, with its sizes; the one place a
 * conditioning value is checked against a model.
 */
public sealed interface ConditioningSpec {

    /**
     * Checks a value for a batch of {@code rows} rows.
     *
     * @param allowUnconditional whether the unconditional value (the null class) may appear,
     *     as in the second half of a classifier-free-guidance batch
     * @throws IllegalArgumentException naming the row and the problem
     */
    void check(Conditioning value, int rows, boolean allowUnconditional);

    /**
     * Class labels {@code 0..count-1}; label {@code count} is the null class used for
     * classifier-free guidance.
     *
     * @param count number of real classes
     */
    record Classes(int count) implements ConditioningSpec {

        /** Validates the count. */
        public Classes {
            if (count < 1) {
                throw new IllegalArgumentException("a class-conditioned model needs at least one class, got " + count);
            }
        }

        /** The null (unconditional) label. */
        public int nullLabel() {
            return count;
        }

        /** One row of the null label. */
        public ClassLabels unconditional() {
            return ClassLabels.of(count);
        }

        @Override
        public void check(Conditioning value, int rows, boolean allowUnconditional) {
            if (!(value instanceof ClassLabels labels)) {
                throw new IllegalArgumentException("this model is conditioned on class labels, not on "
                        + (value == null ? "nothing" : value.toString()));
            }
            requireRows(value, rows);
            int max = allowUnconditional ? count : count - 1;
            for (int i = 0; i < labels.size(); i++) {
                int l = labels.label(i);
                if (l < 0 || l > max) {
                    throw new IllegalArgumentException("label " + l + " at position " + i + " is out of range: the model has "
                            + count + " classes (0.." + (count - 1) + ")"
                            + (allowUnconditional ? " and the null class " + count : ""));
                }
            }
        }
    }

    /**
     * Text-token embeddings with a mask, {@code [rows, tokens, width]}; the unconditional
     * value (the embedding of the empty caption) comes with the model.
     *
     * @param tokens tokens per row (PixArt-α: 120)
     * @param width values per token (T5-XXL: 4096)
     */
    record Text(int tokens, int width) implements ConditioningSpec {

        /** Validates the sizes. */
        public Text {
            if (tokens < 1 || width < 1) {
                throw new IllegalArgumentException("text conditioning needs tokens >= 1 and width >= 1, got " + tokens + " and "
                        + width);
            }
        }

        @Override
        public void check(Conditioning value, int rows, boolean allowUnconditional) {
            if (!(value instanceof TextEmbeddings text)) {
                throw new IllegalArgumentException("this model is conditioned on text embeddings, not on "
                        + (value == null ? "nothing" : value.toString()));
            }
            requireRows(value, rows);
            if (text.tokens() != tokens || text.width() != width) {
                throw new IllegalArgumentException("text embeddings of " + text.tokens() + " tokens x " + text.width()
                        + " do not fit the model, which takes " + tokens + " tokens x " + width);
            }
        }
    }

    private static void requireRows(Conditioning value, int rows) {
        if (value.size() != rows) {
            throw new IllegalArgumentException("the conditioning has " + value.size() + " rows but the batch has " + rows);
        }
    }
}
