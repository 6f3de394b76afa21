package dev.fora.core.cache;

import java.util.Optional;
import java.util.Set;

/**
 * Decides, for every (step, block, branch) of a generation, whether the branch is computed,
 * reused from the {@link FeatureCache}, or forecast from past computed values.
 *
 * <p>A policy is a plain, immutable, thread-safe object. Per generation, the core calls
 * {@link #newSession(GenerationInfo)} once and asks the returned {@link CacheDecider} lazily
 * as the forward pass reaches each block and branch, passing a read-only
 * {@link StepContext}. The smallest policy is a lambda:
 * <pre>{@code
 * CachePolicy everyOther = info -> ctx -> ctx.step() % 2 == 0 ? Decision.COMPUTE : Decision.REUSE;
 * }</pre>
 * The core enforces the rules: a REUSE or FORECAST of a feature that has no computed value
 * fails with a {@link MissingFeatureException} naming the step, block and branch.
 *
 * <h2>How known caching methods plug in</h2>
 * <ul>
 * <li><b>FORA static interval</b> ({@link StaticIntervalPolicy}): a stateless decider on
 *     {@link StepContext#loopIndex()}: compute when {@code step == 0} or
 *     {@code loopIndex % N == 0}, else REUSE; the same answer for every block and branch.</li>
 * <li><b>Explicit per-step compute mask</b> ({@link StepMaskPolicy}): looks up
 *     {@link StepContext#step()} in a boolean array; {@link #newSession} rejects a mask whose
 *     length differs from {@link GenerationInfo#totalSteps()}.</li>
 * <li><b>Warm-up / cool-down</b> ({@link WarmupCooldown}): a decorator that answers COMPUTE
 *     for the first / last steps and delegates the rest; it forwards {@link #signals()},
 *     {@link #historyLength()} and {@link #newSession} to the wrapped policy.</li>
 * <li><b>Different intervals for attention and MLP</b>: branch on
 *     {@link StepContext#branch()}, e.g. delegate to two {@link StaticIntervalPolicy}
 *     deciders, one per {@link Branch}.</li>
 * <li><b>Per-block rules (Delta-DiT)</b>: branch on {@link StepContext#block()} and
 *     {@link StepContext#step()}, e.g. reuse blocks {@code [8, depth)} during early steps and
 *     blocks {@code [0, 8)} during late steps.</li>
 * <li><b>First-Block-Cache</b>: declare {@link Signal#FIRST_BLOCK_RESIDUAL_CHANGE} in
 *     {@link #signals()}; compute block 0, then for blocks &ge; 1 read the signal and REUSE
 *     while the change (accumulated since the last compute, kept in the decider) stays
 *     below a threshold.</li>
 * <li><b>TeaCache</b>: declare {@link Signal#MODULATED_INPUT_CHANGE}; the decider
 *     accumulates the (optionally polynomially rescaled) change once per step and answers
 *     REUSE for the whole step until the sum passes a threshold, then COMPUTE and reset.</li>
 * <li><b>TaylorSeer</b> ({@link TaylorSeerPolicy}): declare a {@link #historyLength()} of
 *     {@code order + 1}; on cached steps answer {@link Decision#forecast(double...)} with
 *     Taylor/finite-difference coefficients computed from {@link StepContext#computedSteps()}.
 *     The core forms the linear combination with the engine's tensor ops, so the policy never
 *     touches a tensor.</li>
 * </ul>
 *
 * <p>Nothing in the core dispatches on policy classes: everything a policy needs to say is
 * in this interface.
 */
@FunctionalInterface
public interface CachePolicy {

    /**
     * Starts a generation. Called once per generation, before its first step; the returned
     * decider may hold per-generation state. Throw {@link IllegalArgumentException} if the
     * policy cannot serve this generation (e.g. a mask of the wrong length).
     */
    CacheDecider newSession(GenerationInfo info);

    /** Signals the core must measure for this policy; none by default (nothing extra is computed). */
    default Set<Signal> signals() {
        return Set.of();
    }

    /**
     * How many computed values per (block, branch) the cache keeps: 0 keeps nothing (the
     * policy only computes), 1 (the default) supports REUSE, {@code k} supports forecasts from
     * the last {@code k} computed values.
     */
    default int historyLength() {
        return 1;
    }

    /** The spec string that {@link CachePolicies#parse(String)} turns back into this policy, if any. */
    default Optional<String> spec() {
        return Optional.empty();
    }
}
