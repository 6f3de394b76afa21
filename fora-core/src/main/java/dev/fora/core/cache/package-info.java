/**
 * Feature caching: the {@link dev.fora.core.cache.CachePolicy} SPI and its built-in policies
 * (FORA's {@link dev.fora.core.cache.StaticIntervalPolicy} first), spec strings
 * ({@link dev.fora.core.cache.CachePolicies}), the {@link dev.fora.core.cache.FeatureCache},
 * the cached forward pass ({@link dev.fora.core.cache.CachedDiT}), one generation's
 * {@link dev.fora.core.cache.GenerationSession} and its
 * {@link dev.fora.core.cache.GenerationStats}.
 */
package dev.fora.core.cache;
