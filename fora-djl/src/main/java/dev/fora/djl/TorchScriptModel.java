package dev.fora.djl;

import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTModel;

/**
 * An exported diffusion transformer run through DJL: the core's {@link DiTModel} on NDArrays
 * ({@link TorchScriptDiT} for DiT's layout and class labels, {@link TorchScriptPixArt} for
 * PixArt-α's cross-attention layout and text embeddings), with its call counts and the
 * exported whole-model forward. An instance serves one generation at a time and releases
 * every array it created when closed; {@link DiTPipeline#newModel()} hands them out.
 */
public interface TorchScriptModel extends DiTModel<NDTensor>, AutoCloseable {

    @Override
    NDArrayOps ops();

    /** The TorchScript calls this instance has made so far. */
    TorchScriptCalls calls();

    /**
     * The exported whole-model forward in one TorchScript call (the uncached baseline); the
     * result is in the current scope.
     */
    NDTensor wholeModel(NDTensor x, float[] timesteps, Conditioning conditioning);

    /**
     * Checks a latent batch: float32 {@code [n, C, H, W]} of the model's sizes.
     *
     * @throws IllegalArgumentException if it does not fit
     */
    void checkLatent(NDTensor x, int n);

    /** Releases every array this instance created. Idempotent. */
    @Override
    void close();
}
