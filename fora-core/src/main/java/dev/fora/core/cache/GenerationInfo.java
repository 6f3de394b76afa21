package dev.fora.core.cache;

import dev.fora.core.model.DiTConfig;

/**
 * What a policy learns when a generation starts.
 *
 * @param totalSteps number of sampler steps {@code K}
 * @param config the model's sizes (depth, tokens, hidden size)
 */
public record GenerationInfo(int totalSteps, DiTConfig config) {
}
