package dev.fora.core.sampling;

import java.util.Arrays;
import java.util.List;

/**
 * One noise stream per image, so an image's noise never depends on its batch: a draw of
 * shape {@code [N, ...]} is image 0's next draw of {@code [...]}, then image 1's, and so on.
 * {@link #seeded(long, int)} is the library's seed rule: image {@code k} of a request with
 * seed {@code S} draws from {@link SeededGaussianNoise}{@code (S + k)}.
 */
public final class PerImageNoise implements NoiseSource {

    private final List<NoiseSource> images;

    /** @param images one source per image, in batch order */
    public PerImageNoise(List<NoiseSource> images) {
        if (images.isEmpty()) {
            throw new IllegalArgumentException("per-image noise needs at least one image");
        }
        this.images = List.copyOf(images);
    }

    /** Image {@code k} draws from {@code new SeededGaussianNoise(seed + k)}. */
    public static PerImageNoise seeded(long seed, int images) {
        NoiseSource[] sources = new NoiseSource[images];
        for (int k = 0; k < images; k++) {
            sources[k] = new SeededGaussianNoise(seed + k);
        }
        return new PerImageNoise(Arrays.asList(sources));
    }

    /** Number of images. */
    public int images() {
        return images.size();
    }

    /** Image {@code k}'s own stream. */
    public NoiseSource image(int k) {
        return images.get(k);
    }

    @Override
    public float[] next(long[] shape) {
        if (shape.length == 0 || shape[0] != images.size()) {
            throw new IllegalArgumentException("a draw of shape " + Arrays.toString(shape) + " does not have one row per image ("
                    + images.size() + ")");
        }
        long[] row = Arrays.copyOfRange(shape, 1, shape.length);
        int per = NoiseSource.count(row);
        float[] out = new float[NoiseSource.count(shape)];
        for (int k = 0; k < images.size(); k++) {
            float[] draw = images.get(k).next(row);
            if (draw == null || draw.length != per) {
                throw new IllegalArgumentException("the noise source of image " + k + " returned " + (draw == null ? "null"
                        : draw.length + " values") + " for a draw of " + per);
            }
            System.arraycopy(draw, 0, out, k * per, per);
        }
        return out;
    }
}
