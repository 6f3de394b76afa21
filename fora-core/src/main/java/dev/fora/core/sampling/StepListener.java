package dev.fora.core.sampling;

/**
 * Told when a sampler step has finished, e.g. to drive a progress bar. Pass one to
 * {@link DiffusionSampler#sample(dev.fora.core.tensor.TensorOps, DenoisingModel, long[], dev.fora.core.model.Conditioning, NoiseSource, StepListener)}
 * (or to {@code GenerationRequest.Builder.onStep} in {@code fora-djl}).
 *
 * <p>The sampler calls {@link #onStep} on the thread that runs the loop, after step
 * {@code step} has produced the next latent, once per step, for {@code step = 0..totalSteps-1}
 * in order. The listener sees no tensors and cannot change the result; it should return
 * quickly, since the loop waits for it. An exception it throws aborts the generation (the
 * sampler releases its latents and rethrows), which a caller can use to cancel.
 */
@FunctionalInterface
public interface StepListener {

    /** A listener that does nothing. */
    StepListener NONE = (step, totalSteps) -> {
    };

    /**
     * Sampler step {@code step} has finished.
     *
     * @param step the step that finished, {@code 0} (noisiest) to {@code totalSteps - 1}
     * @param totalSteps number of sampler steps {@code K} of this generation
     */
    void onStep(int step, int totalSteps);
}
