package dev.fora.core.sampling;

import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTModel;
import dev.fora.core.tensor.Tensor;
import java.util.Arrays;

/**
 * What a sampler calls once per step: latent in, model output out. Implemented by a plain
 * model ({@link #uncached(DiTModel)}), by a caching {@link dev.fora.core.engine.Generation},
 * and by {@link ClassifierFreeGuidance} around either.
 *
 * @param <T> tensor type
 */
@FunctionalInterface
public interface DenoisingModel<T extends Tensor> {

    /**
     * Predicts the model output for latent {@code x} at the given step.
     *
     * @param step the sampler step (carries the original timestep fed to the model)
     * @param x latent {@code [N, C, H, W]}
     * @param conditioning one row per latent row
     * @return {@code [N, C or 2C, H, W]}: eps, then (with learned sigma) the variance value v;
     *     a new tensor in the current scope
     */
    T predict(SamplingStep step, T x, Conditioning conditioning);

    /** The plain, uncached model as a denoising model. */
    static <T extends Tensor> DenoisingModel<T> uncached(DiTModel<T> model) {
        return (step, x, conditioning) -> {
            float[] t = new float[conditioning.size()];
            Arrays.fill(t, (float) step.timestep());
            return model.forward(x, t, conditioning);
        };
    }
}
