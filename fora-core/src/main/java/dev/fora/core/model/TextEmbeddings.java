package dev.fora.core.model;

import java.util.Arrays;
import java.util.Objects;

/**
 * Text conditioning for cross-attention models (PixArt-α): per row, {@code tokens} embeddings
 * of {@code width} values from a text encoder (T5), and a mask saying which tokens are real
 * (the encoder's attention mask; padding is masked out).
 */
public final class TextEmbeddings implements Conditioning {

    private final int tokens;
    private final int width;
    private final float[] values;
    private final boolean[] mask;

    /**
     * @param tokens tokens per row
     * @param width values per token
     * @param values {@code [rows, tokens, width]} row-major (copied)
     * @param mask {@code [rows, tokens]}, true for a real token (copied); every row needs one
     */
    public TextEmbeddings(int tokens, int width, float[] values, boolean[] mask) {
        Objects.requireNonNull(values, "values");
        Objects.requireNonNull(mask, "mask");
        if (tokens < 1 || width < 1) {
            throw new IllegalArgumentException("text embeddings need tokens >= 1 and width >= 1, got " + tokens + " and " + width);
        }
        long perRow = (long) tokens * width;
        if (values.length % perRow != 0 || values.length == 0) {
            throw new IllegalArgumentException(values.length + " embedding values are not whole rows of " + tokens + " tokens x "
                    + width);
        }
        int rows = (int) (values.length / perRow);
        if (mask.length != rows * tokens) {
            throw new IllegalArgumentException("the mask has " + mask.length + " entries; " + rows + " rows of " + tokens
                    + " tokens need " + rows * tokens);
        }
        for (int r = 0; r < rows; r++) {
            boolean any = false;
            for (int t = 0; t < tokens; t++) {
                any |= mask[r * tokens + t];
            }
            if (!any) {
                throw new IllegalArgumentException("row " + r + " of the text mask has no real token");
            }
        }
        for (int i = 0; i < values.length; i++) {
            if (!Float.isFinite(values[i])) {
                throw new IllegalArgumentException("text embedding value " + i + " is " + values[i]);
            }
        }
        this.tokens = tokens;
        this.width = width;
        this.values = values.clone();
        this.mask = mask.clone();
    }

    /** Tokens per row. */
    public int tokens() {
        return tokens;
    }

    /** Values per token. */
    public int width() {
        return width;
    }

    /** {@code [rows, tokens, width]} (a copy). */
    public float[] values() {
        return values.clone();
    }

    /** {@code [rows, tokens]}, true for a real token (a copy). */
    public boolean[] mask() {
        return mask.clone();
    }

    @Override
    public int size() {
        return mask.length / tokens;
    }

    @Override
    public TextEmbeddings rows(int[] rows) {
        int per = tokens * width;
        float[] v = new float[rows.length * per];
        boolean[] m = new boolean[rows.length * tokens];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(values, rows[i] * per, v, i * per, per);
            System.arraycopy(mask, rows[i] * tokens, m, i * tokens, tokens);
        }
        return new TextEmbeddings(tokens, width, v, m);
    }

    @Override
    public TextEmbeddings concat(Conditioning other) {
        if (!(other instanceof TextEmbeddings o) || o.tokens != tokens || o.width != width) {
            throw new IllegalArgumentException("cannot append " + other + " to " + this);
        }
        float[] v = Arrays.copyOf(values, values.length + o.values.length);
        System.arraycopy(o.values, 0, v, values.length, o.values.length);
        boolean[] m = Arrays.copyOf(mask, mask.length + o.mask.length);
        System.arraycopy(o.mask, 0, m, mask.length, o.mask.length);
        return new TextEmbeddings(tokens, width, v, m);
    }

    @Override
    public String toString() {
        return "text embeddings [" + size() + ", " + tokens + ", " + width + "]";
    }
}
