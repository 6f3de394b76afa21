package dev.fora.core.sampling;

/**
 * One step of a sampler loop, as the model sees it.
 *
 * @param index sampler step, 0 = first (noisiest) step, {@code totalSteps - 1} = last
 * @param totalSteps number of sampler steps {@code K}
 * @param timestep the ORIGINAL diffusion timestep the model is fed (e.g. 999, 979, ... for K = 50)
 */
public record SamplingStep(int index, int totalSteps, double timestep) {

    /** Validates the indices. */
    public SamplingStep {
        if (totalSteps <= 0 || index < 0 || index >= totalSteps) {
            throw new IllegalArgumentException("step " + index + " is outside 0.." + (totalSteps - 1));
        }
    }

    /** The respaced loop index {@code i = K - 1 - index} that counts down to 0 (FORA's {@code i}). */
    public int loopIndex() {
        return totalSteps - 1 - index;
    }
}
