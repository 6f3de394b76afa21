/**
 * The engine: per-image {@link dev.fora.core.engine.Run}s under a
 * {@link dev.fora.core.engine.StepScheduler} that runs model passes over runs at their own steps,
 * and the lockstep {@link dev.fora.core.engine.Generation} for a sampler loop of your own. What
 * caching did is a {@link dev.fora.core.engine.GenerationStats}.
 *
 * <p>Inside, one class per job, all package-private: {@code Declarations} (what a policy declared,
 * checked against the model; the budget), {@code PassLayout} (which rows belong to which decider,
 * gathering and storing their rows), {@code StagedForward} (the stages in forward order, block
 * ranges), {@code Measuring} (each decider's measurements), {@code ModelPass} (fused or staged),
 * {@code DeciderState} (one decider's cache slots, which own every tensor stored in them),
 * {@code Shared}/{@code Rows}/{@code CacheMemory} (tensors computed for several deciders, held
 * per decider, compacted when partly released, and counted).
 */
package dev.fora.core.engine;
