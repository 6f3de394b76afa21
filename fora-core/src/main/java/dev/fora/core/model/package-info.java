/**
 * The Diffusion Transformer seen as separate stages (embed, adaLN modulation, attention
 * branch, MLP branch, final layer), so a feature cache can stand between each branch and its
 * gated residual add.
 */
package dev.fora.core.model;
