/**
 * Cache policies: the {@link dev.fora.core.cache.CachePolicy} SPI (one
 * {@link dev.fora.core.cache.CacheDecider} per image or guidance half, deciding from an immutable
 * {@link dev.fora.core.cache.StepContext}, with the {@link dev.fora.core.cache.Measurement}s it
 * declared), the built-in policies (FORA's {@link dev.fora.core.cache.StaticIntervalPolicy}
 * first) and their spec strings ({@link dev.fora.core.cache.CachePolicies}, one
 * {@link dev.fora.core.cache.PolicyType} per kind of policy). The engine that
 * carries out the decisions is {@link dev.fora.core.engine}.
 */
package dev.fora.core.cache;
