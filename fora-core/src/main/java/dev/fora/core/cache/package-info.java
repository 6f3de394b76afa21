/**
 * Feature caching: the {@link dev.fora.core.cache.CachePolicy} SPI (one
 * {@link dev.fora.core.cache.CacheDecider} per image, declared
 * {@link dev.fora.core.cache.Measurement}s) and its built-in policies (FORA's
 * {@link dev.fora.core.cache.StaticIntervalPolicy} first), spec strings
 * ({@link dev.fora.core.cache.CachePolicies}, one {@link dev.fora.core.cache.PolicyType} per
 * kind of policy), and one {@link dev.fora.core.cache.Generation}:
 * the owner of the cached forward pass, its {@link dev.fora.core.cache.FeatureCache} and its
 * {@link dev.fora.core.cache.GenerationStats}.
 */
package dev.fora.core.cache;
