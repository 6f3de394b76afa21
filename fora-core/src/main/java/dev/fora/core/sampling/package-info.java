/**
 * DiT's diffusion schedule and respacing, the DDPM, DDIM and DPM-Solver++(2M) samplers,
 * classifier-free guidance and noise sources, all written against
 * {@link dev.fora.core.tensor.TensorOps}; the sampler loop's controls ({@link
 * dev.fora.core.sampling.LoopControl}: step listener, {@link dev.fora.core.sampling.CancelToken},
 * NaN/infinity check).
 */
package dev.fora.core.sampling;
