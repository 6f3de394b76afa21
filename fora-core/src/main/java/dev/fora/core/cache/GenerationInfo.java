package dev.fora.core.cache;

import dev.fora.core.model.DiTConfig;

/**
 * What a policy learns when a generation starts.
 *
 * @param totalSteps number of sampler steps {@code K}
 * @param config the model: tokens, hidden size, depth, block layout, conditioning
 * @param images images in the batch
 * @param guided whether every image runs as two rows, conditional and unconditional (CFG)
 * @param rowsPerDecider batch rows one decider decides for: 2 for a guided image decided as
 *     one, else 1
 */
public record GenerationInfo(int totalSteps, DiTConfig config, int images, boolean guided, int rowsPerDecider) {

    /** Batch rows the model runs: {@code images}, or {@code 2 * images} when guided. */
    public int rows() {
        return guided ? 2 * images : images;
    }
}
