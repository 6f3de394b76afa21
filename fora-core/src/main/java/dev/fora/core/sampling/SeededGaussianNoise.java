package dev.fora.core.sampling;

import java.util.SplittableRandom;

/**
 * Deterministic standard normal noise from a seed: {@link SplittableRandom} uniforms through
 * the Box-Muller transform (with {@link StrictMath}, so every JVM produces the same values).
 */
public final class SeededGaussianNoise implements NoiseSource {

    private final SplittableRandom random;
    private double spare;
    private boolean hasSpare;

    /** @param seed the seed; equal seeds give equal sequences */
    public SeededGaussianNoise(long seed) {
        this.random = new SplittableRandom(seed);
    }

    @Override
    public float[] next(long[] shape) {
        float[] out = new float[NoiseSource.count(shape)];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) nextGaussian();
        }
        return out;
    }

    private double nextGaussian() {
        if (hasSpare) {
            hasSpare = false;
            return spare;
        }
        double u1 = 1.0 - random.nextDouble(); // (0, 1]: log is finite
        double u2 = random.nextDouble();
        double radius = StrictMath.sqrt(-2.0 * StrictMath.log(u1));
        double angle = 2.0 * StrictMath.PI * u2;
        spare = radius * StrictMath.sin(angle);
        hasSpare = true;
        return radius * StrictMath.cos(angle);
    }
}
