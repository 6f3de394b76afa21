/**
 * DiT's diffusion schedule and respacing, the DDPM, DDIM and DPM-Solver++(2M) samplers,
 * classifier-free guidance and noise sources, all written against
 * {@link dev.fora.core.tensor.TensorOps}.
 */
package dev.fora.core.sampling;
