/**
 * Feature caching: the {@link dev.fora.core.cache.CachePolicy} SPI (one
 * {@link dev.fora.core.cache.CacheDecider} per image, declared
 * {@link dev.fora.core.cache.Measurement}s) and its built-in policies (FORA's
 * {@link dev.fora.core.cache.StaticIntervalPolicy} first), spec strings
 * ({@link dev.fora.core.cache.CachePolicies}), and one {@link dev.fora.core.engine.Generation}:
 * the owner of the cached forward pass, its {@link dev.fora.core.cache.FeatureCache} and its
 * {@link dev.fora.core.engine.GenerationStats}.
 */
package dev.fora.core.cache;

import dev.fora.core.engine.GenerationStats;
import dev.fora.core.engine.Generation;