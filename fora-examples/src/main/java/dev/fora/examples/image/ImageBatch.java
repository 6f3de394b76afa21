package dev.fora.examples.image;

import java.util.Arrays;
import java.util.Objects;

/**
 * A batch of images as plain floats, {@code [N, C, H, W]} row-major, values in the model's
 * range {@code [-1, 1]}. Immutable by convention: the array is not copied.
 */
public final class ImageBatch {

    private final float[] values;
    private final int count;
    private final int channels;
    private final int height;
    private final int width;

    /**
     * @param values {@code N*C*H*W} values, row-major
     * @param count {@code N}
     * @param channels {@code C}
     * @param height {@code H}
     * @param width {@code W}
     */
    public ImageBatch(float[] values, int count, int channels, int height, int width) {
        this.values = Objects.requireNonNull(values, "values");
        if (count < 0 || channels < 1 || height < 1 || width < 1
                || (long) count * channels * height * width != values.length) {
            throw new IllegalArgumentException("shape [" + count + ", " + channels + ", " + height + ", " + width
                    + "] does not match " + values.length + " values");
        }
        this.count = count;
        this.channels = channels;
        this.height = height;
        this.width = width;
    }

    /** Concatenates batches of the same image shape. */
    public static ImageBatch concat(Iterable<ImageBatch> batches) {
        int n = 0;
        ImageBatch first = null;
        for (ImageBatch b : batches) {
            if (first == null) {
                first = b;
            } else if (b.channels != first.channels || b.height != first.height || b.width != first.width) {
                throw new IllegalArgumentException("cannot concatenate " + first.shapeString() + " and " + b.shapeString());
            }
            n += b.count;
        }
        if (first == null) {
            throw new IllegalArgumentException("nothing to concatenate");
        }
        float[] all = new float[n * first.imageSize()];
        int pos = 0;
        for (ImageBatch b : batches) {
            System.arraycopy(b.values, 0, all, pos, b.values.length);
            pos += b.values.length;
        }
        return new ImageBatch(all, n, first.channels, first.height, first.width);
    }

    /** {@code N}. */
    public int count() {
        return count;
    }

    /** {@code C}. */
    public int channels() {
        return channels;
    }

    /** {@code H}. */
    public int height() {
        return height;
    }

    /** {@code W}. */
    public int width() {
        return width;
    }

    /** {@code C*H*W}. */
    public int imageSize() {
        return channels * height * width;
    }

    /** A copy of image {@code n}, {@code [C, H, W]}. */
    public float[] image(int n) {
        Objects.checkIndex(n, count);
        return Arrays.copyOfRange(values, n * imageSize(), (n + 1) * imageSize());
    }

    /** The backing array (not a copy). */
    public float[] values() {
        return values;
    }

    /** {@code [N, C, H, W]} as text. */
    public String shapeString() {
        return "[" + count + ", " + channels + ", " + height + ", " + width + "]";
    }

    @Override
    public String toString() {
        return "ImageBatch" + shapeString();
    }
}
