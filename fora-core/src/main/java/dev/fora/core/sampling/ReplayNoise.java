package dev.fora.core.sampling;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Replays recorded noise: the initial latent first, then the per-step draws in the order the
 * sampler consumes them ({@link DdpmSampler}: one per step except the last). Used to compare
 * a run step by step with a Python reference. When the reference ran DiT's CFG batch
 * {@code [z; z]}, record the first (conditional) half of each draw.
 *
 * <p>{@link #next} throws {@link IllegalArgumentException} when the next recorded draw has a
 * different size than the one asked for (nothing is consumed), and
 * {@link IllegalStateException} when every recorded draw has been used.
 */
public final class ReplayNoise implements NoiseSource {

    private final List<float[]> draws;
    private int next;

    /** @param draws the recorded arrays, in consumption order */
    public ReplayNoise(List<float[]> draws) {
        this.draws = new ArrayList<>(draws.size());
        for (float[] d : draws) {
            this.draws.add(d.clone());
        }
    }

    /**
     * The next recorded draw (a copy).
     *
     * @throws IllegalArgumentException if the recorded draw does not have {@code shape}'s number of
     *     values; the draw stays the next one
     * @throws IllegalStateException if all recorded draws have been used
     */
    @Override
    public float[] next(long[] shape) {
        if (next >= draws.size()) {
            throw new IllegalStateException("replay noise exhausted: all " + draws.size() + " recorded draws were used");
        }
        float[] d = draws.get(next);
        int expected = NoiseSource.count(shape);
        if (d.length != expected) {
            throw new IllegalArgumentException("wrong size of recorded draw " + next + ": expected " + expected
                    + " values for a draw of shape " + Arrays.toString(shape) + ", recorded " + d.length);
        }
        next++;
        return d.clone();
    }

    /** Draws not consumed yet. */
    public int remaining() {
        return draws.size() - next;
    }
}
