package dev.fora.core.calibration;

import dev.fora.core.cache.CachePolicy;

/**
 * Runs a policy on the calibration images, with the model, sampler, steps and guidance the
 * calibration is for, and returns its FLOP-bound speed-up
 * ({@link dev.fora.core.engine.GenerationStats#flopSpeedup()}, over all the images). Adaptive
 * policies decide on the trajectory they produce, so this must be a real cached run.
 */
@FunctionalInterface
public interface SpeedupProbe {

    /** The FLOP-bound speed-up of {@code policy} on the calibration images. */
    double flopSpeedup(CachePolicy policy);
}
