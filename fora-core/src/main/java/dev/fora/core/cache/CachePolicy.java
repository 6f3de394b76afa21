package dev.fora.core.cache;

import java.util.Optional;
import java.util.Set;

/**
 * Decides, for every (step, block, branch) of a generation and every image, whether the
 * branch is computed, reused from the cache, or forecast from past computed values.
 *
 * <p>A policy is a plain, immutable, thread-safe object. When a generation starts, the core
 * calls {@link #newDecider(GenerationInfo)} once per image (once per CFG half if
 * {@link #separateGuidanceHalves()}), and asks each {@link CacheDecider} lazily as the
 * forward pass reaches each block and branch, passing a read-only {@link StepContext}. The
 * images that compute a branch run through the model as one sub-batch; the others never
 * touch it. The smallest policy is a lambda:
 * <pre>{@code
 * CachePolicy everyOther = info -> ctx -> ctx.step().step() % 2 == 0 ? Decision.COMPUTE : Decision.REUSE;
 * }</pre>
 * The core enforces the rules: a REUSE or FORECAST of a feature with too few computed values
 * for that image fails with a {@link MissingFeatureException} naming the step, block, branch
 * and image.
 *
 * <h2>How known caching methods plug in</h2>
 * <ul>
 * <li><b>FORA static interval</b> ({@link StaticIntervalPolicy}): a stateless decider on
 *     {@link dev.fora.core.sampling.SamplingStep#loopIndex()}: compute when {@code step == 0}
 *     or {@code loopIndex % N == 0}, else REUSE; the same answer for every block, branch and image.</li>
 * <li><b>Explicit per-step compute mask</b> ({@link StepMaskPolicy}).</li>
 * <li><b>Warm-up / cool-down</b> ({@link WarmupCooldown}): a decorator that answers COMPUTE
 *     for the first / last steps and forwards everything else to the wrapped policy.</li>
 * <li><b>Per-branch intervals (PAB)</b>: branch on {@link StepContext#branch()} (a
 *     {@link dev.fora.core.model.BranchSpec} of the model's layout: self-attention,
 *     cross-attention, MLP).</li>
 * <li><b>Per-block rules (Delta-DiT)</b>: branch on {@link StepContext#block()} and the step.</li>
 * <li><b>First-Block-Cache</b>: declare {@link Measurement#residualChange(int) residualChange(0)};
 *     compute block 0, then for later blocks REUSE while the change accumulated in the
 *     decider since the last compute stays below a threshold.</li>
 * <li><b>TeaCache</b>: declare {@link Measurement#modulatedInputChange(int) modulatedInputChange(0)};
 *     accumulate the (rescaled) change once per step in {@link CacheDecider#beginStep} /
 *     at block 0, and answer REUSE for the step until the sum passes a threshold.</li>
 * <li><b>Calibration, MagCache</b>: declare {@link Measurement#computedChange()} and learn
 *     from {@link CacheDecider#computed}.</li>
 * <li><b>TaylorSeer</b> ({@link TaylorSeerPolicy}): declare a {@link #historyLength()} of
 *     {@code order + 1}; on cached steps answer {@link Decision#forecast(double...)} with
 *     coefficients from {@link StepContext#computedSteps()}. The core forms the linear
 *     combination with the engine's tensor ops, so the policy never touches a tensor.</li>
 * </ul>
 *
 * <p>Nothing in the core dispatches on policy classes: everything a policy needs to say is
 * in this interface.
 */
@FunctionalInterface
public interface CachePolicy {

    /**
     * Starts one image's decisions for a generation. Called when the generation opens, once
     * per image (or CFG half); the returned decider may hold state. Throw
     * {@link IllegalArgumentException} if the policy cannot serve this generation (e.g. a mask
     * of the wrong length). Must not return null.
     */
    CacheDecider newDecider(GenerationInfo info);

    /** What the generation must measure for this policy; none by default (nothing extra is computed). */
    default Set<Measurement> measurements() {
        return Set.of();
    }

    /**
     * How many computed values per (block, branch) and image the cache keeps: 0 keeps nothing
     * (the policy only computes), 1 (the default) supports REUSE, {@code k} supports forecasts
     * from the last {@code k} computed values. More than the generation's step count is
     * treated as the step count.
     */
    default int historyLength() {
        return 1;
    }

    /**
     * Whether the conditional and unconditional rows of a guided image get a decider each
     * (and may decide differently). By default an image's two halves decide together, as in
     * FORA.
     */
    default boolean separateGuidanceHalves() {
        return false;
    }

    /** The spec string that {@link CachePolicies#parse(String)} turns back into this policy, if any. */
    default Optional<String> spec() {
        return Optional.empty();
    }
}
