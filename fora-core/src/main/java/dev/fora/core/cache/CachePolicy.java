package dev.fora.core.cache;

import dev.fora.core.engine.MissingFeatureException;
import java.util.BitSet;
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
 * <li><b>Per-branch intervals (PAB)</b> ({@link BranchIntervalPolicy}): branch on
 *     {@link StepContext#branch()} (a {@link dev.fora.core.model.BranchSpec} of the model's
 *     layout: self-attention, cross-attention, MLP).</li>
 * <li><b>Per-block rules</b>: branch on {@link StepContext#block()} and the step.</li>
 * <li><b>First-Block-Cache</b> ({@link FirstBlockCachePolicy}): declare
 *     {@link Measurement#residualChange(int) residualChange(0)} and the {@link BlockRange} of
 *     blocks {@code 1..depth-1}; compute block 0, then at block 1 answer
 *     {@link Decision#reuseResidual(int)} while the change accumulated in the decider since the
 *     last compute stays below a threshold.</li>
 * <li><b>TeaCache</b> ({@link TeaCachePolicy}): declare
 *     {@link Measurement#modulatedInputChange(int) modulatedInputChange(0)} and the range of
 *     every block; accumulate the (rescaled) change at block 0 and skip every block until the
 *     sum passes a threshold.</li>
 * <li><b>MagCache</b> ({@link MagCachePolicy}): declare a
 *     {@link Measurement#residualMagnitude(BlockRange) residualMagnitude} of the whole stack and
 *     read it in {@link CacheDecider#endStep(StepContext)}.</li>
 * <li><b>Delta-DiT</b> ({@link DeltaDiTPolicy}): skip a front or rear {@link BlockRange}
 *     depending on the step.</li>
 * <li><b>Calibration</b>: declare {@link Measurement#computedChange()} and learn
 *     from {@link CacheDecider#computed}.</li>
 * <li><b>TaylorSeer</b> ({@link TaylorSeerPolicy}) and <b>HiCache</b> ({@link HiCachePolicy}):
 *     declare a {@link #historyLength()} of {@code order + 1}; on cached steps answer
 *     {@link Decision#forecast(double...)} with coefficients from
 *     {@link StepContext#computedSteps()}. The core forms the linear combination with the
 *     engine's tensor ops, so the policy never touches a tensor.</li>
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

    /**
     * What the generation must measure for this policy, for a generation of this shape (a
     * measurement of a {@link BlockRange} usually depends on the depth); none by default, so
     * nothing extra is computed.
     */
    default Set<Measurement> measurements(GenerationInfo info) {
        return Set.of();
    }

    /**
     * The block ranges whose residual the generation keeps per image for this policy, so that
     * its deciders may answer {@link Decision#reuseResidual(int)}: at the end of every range, for
     * every image that ran every branch of the range at that step, the cache stores
     * {@code h_out(to-1) - h_in(from)} of that image's rows. Each range costs one value per image
     * in the cache (counted in its bytes and budget). None by default.
     */
    default Set<BlockRange> blockRanges(GenerationInfo info) {
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

    /**
     * The spec string that {@link CachePolicies#parse(String)} turns back into this policy, if
     * any: a built-in's, or a registered {@link PolicyType}'s ({@link PolicyType#spec}).
     */
    default Optional<String> spec() {
        return Optional.empty();
    }

    /**
     * The steps of a generation on which every feature is computed, when the policy fixes them
     * before sampling and reuses or forecasts every feature on the other steps (a static
     * schedule, such as FORA's interval); empty (the default) when its decisions depend on
     * measurements, differ by block or branch, or are not known ahead. A scheduler serving many
     * requests reads it to start a run in phase with the others, so that their full steps share
     * one model call; the decisions themselves still come from the deciders.
     */
    default Optional<BitSet> fullSteps(GenerationInfo info) {
        return Optional.empty();
    }
}
