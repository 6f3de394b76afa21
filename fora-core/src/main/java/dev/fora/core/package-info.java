/**
 * FORA4J core: the engine-independent half of Fast-FORward caching for Diffusion Transformers.
 */
package dev.fora.core;
