package dev.fora.core.sampling;

/**
 * Standard normal noise for a sampler: first the initial latent {@code x_T}, then, for
 * stochastic samplers, one draw per step that adds noise (in sampler order).
 * Implementations: {@link SeededGaussianNoise} (default) and {@link ReplayNoise} (recorded
 * arrays, to compare a run step by step with a reference implementation).
 */
@FunctionalInterface
public interface NoiseSource {

    /** The next draw: {@code product(shape)} standard normal values, row-major. */
    float[] next(long[] shape);

    /** Element count of a shape. */
    static int count(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("noise draw too large: " + n + " elements");
        }
        return (int) n;
    }
}
