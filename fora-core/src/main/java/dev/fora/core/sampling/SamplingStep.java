package dev.fora.core.sampling;

/**
 * One step of a sampler loop, carrying every time coordinate the code uses, so no method
 * takes a bare number in the wrong one:
 * <ul>
 * <li><b>step</b> {@link #step()}: {@code 0} for the first (noisiest) step up to {@code K-1};
 *     what stats, masks and warm-up count;</li>
 * <li><b>loop index</b> {@link #loopIndex()}: {@code K-1-step}, counting down to 0, as FORA's
 *     sampler loop counts (its refresh rule is {@code loopIndex % N == 0});</li>
 * <li><b>respaced index</b>: the row of the respaced {@link DiffusionSchedule} the step uses;
 *     the loop runs the schedule from its last row down, so it equals the loop index, and
 *     samplers read the schedule with {@link #loopIndex()};</li>
 * <li><b>timestep</b> {@link #timestep()}: the ORIGINAL diffusion timestep fed to the model
 *     ({@code schedule.timestep(loopIndex)}: 999, 979, ... for K = 50 of 1000).</li>
 * </ul>
 *
 * @param step sampler step, 0 = first (noisiest), {@code totalSteps - 1} = last
 * @param totalSteps number of sampler steps {@code K}
 * @param timestep the ORIGINAL diffusion timestep the model is fed
 */
public record SamplingStep(int step, int totalSteps, double timestep) {

    /** Validates the indices. */
    public SamplingStep {
        if (totalSteps <= 0 || step < 0 || step >= totalSteps) {
            throw new IllegalArgumentException("step " + step + " is outside 0.." + (totalSteps - 1));
        }
    }

    /** The step {@code step} of a loop over {@code schedule}, with its timestep. */
    public static SamplingStep of(DiffusionSchedule schedule, int step) {
        int k = schedule.steps();
        if (step < 0 || step >= k) {
            throw new IllegalArgumentException("step " + step + " is outside 0.." + (k - 1));
        }
        return new SamplingStep(step, k, schedule.timestep(k - 1 - step));
    }

    /** FORA's loop index {@code K - 1 - step}, counting down to 0; also the respaced schedule index. */
    public int loopIndex() {
        return totalSteps - 1 - step;
    }

    /** Whether this is the last step (loop index 0). */
    public boolean isLast() {
        return step == totalSteps - 1;
    }
}
