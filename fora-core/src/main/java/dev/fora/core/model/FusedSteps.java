package dev.fora.core.model;

import dev.fora.core.tensor.Tensor;
import java.util.List;

/**
 * Whole steps in one engine call, for models where a call's fixed cost is large next to its
 * arithmetic. A generation uses them for steps whose decisions are uniform (every image
 * computes every feature, or reuses or forecasts every feature alike), or alike for every image
 * ({@link #masked}, where the engine has it), and runs the stages for the others. Every call
 * must equal the staged forward of {@link DiTModel} (within float rounding). Features are
 * stacked {@code [features, N, T, D]} in forward order (block 0's branches in layout order, then
 * block 1's, ...).
 *
 * @param <T> tensor type
 */
public interface FusedSteps<T extends Tensor> {

    /**
     * What a full step returns.
     *
     * @param output the model output {@code [N, outC, H, W]}
     * @param features every branch output before its gate, stacked {@code [features, N, T, D]}
     * @param <T> tensor type
     */
    record Full<T extends Tensor>(T output, T features) {
    }

    /**
     * What {@link #head} returns.
     *
     * @param tokens the tokens leaving the head's last block {@code [N, T, D]}
     * @param residual what the head's blocks added to the embedded tokens {@code [N, T, D]}
     * @param conditioning the conditioning vector the blocks read {@code [N, D]}, for {@link #tail}
     * @param <T> tensor type
     */
    record Head<T extends Tensor>(T tokens, T residual, T conditioning) {
    }

    /**
     * What {@link #tail} returns.
     *
     * @param output the model output {@code [N, outC, H, W]}
     * @param tokens the tokens entering the final layer {@code [N, T, D]}
     * @param <T> tensor type
     */
    record Tail<T extends Tensor>(T output, T tokens) {
    }

    /**
     * Other images' tails that ride along a split step ({@link #splitWithTails}): tokens and
     * conditioning as {@link #head} gives them. The first {@code computing} rows left block 0 and
     * run the other blocks; the rest are past every block and take the final layer only.
     *
     * @param tokens {@code [M, T, D]}
     * @param conditioning {@code [M, D]}
     * @param computing how many leading rows run blocks {@code 1..}
     * @param <T> tensor type
     */
    record Tails<T extends Tensor>(T tokens, T conditioning, int computing) {
    }

    /**
     * What {@link #splitWithTails} returns.
     *
     * @param output the split step's output {@code [N, outC, H, W]}
     * @param features the split step's full rows' features {@code [features, fullRows, T, D]}
     * @param tailOutput the tails' output {@code [M, outC, H, W]}
     * @param tailTokens the tokens the computing tails enter the final layer with {@code [computing, T, D]}
     * @param <T> tensor type
     */
    record SplitWithTails<T extends Tensor>(T output, T features, T tailOutput, T tailTokens) {
    }

    /** A full step: the output and every feature, in the current scope. */
    Full<T> full(T x, float[] timesteps, Conditioning conditioning);

    /**
     * A full step that may write its features into {@code into}, a stack nobody reads any more
     * (the one this step's stack replaces in the cache), instead of a new one: fresh memory of
     * that size costs a page fault per page on some hosts. Takes {@code into}: it comes back as
     * the features, or is closed. By default it is closed and {@link #full} runs.
     */
    default Full<T> full(T x, float[] timesteps, Conditioning conditioning, T into) {
        into.close();
        return full(x, timesteps, conditioning);
    }

    /**
     * A full step whose features nobody keeps (every policy of the pass caches nothing): the
     * output only. By default {@link #full}'s, its features released; an engine with a plain
     * forward call that does not gather the features overrides it.
     */
    default T uncached(T x, float[] timesteps, Conditioning conditioning) {
        Full<T> full = full(x, timesteps, conditioning);
        full.features().close();
        return full.output();
    }

    /**
     * A cached step: the output with every branch output taken as {@code sum_j coefficients[j] *
     * slots[j]} and added through this step's gates. Each slot is a set of cached features
     * stacked {@code [features, N, T, D]}: one slot with coefficient 1 reuses it, several make a
     * forecast (the engine combines them inside the call).
     */
    T cached(T x, float[] timesteps, Conditioning conditioning, List<T> slots, double[] coefficients);

    /**
     * Whether {@link #split} is one call. A scheduler then runs, in one pass, runs that compute
     * every feature beside runs that reuse or forecast every feature, where it would otherwise make
     * a pass for each (on a small model, calls are what a step costs). By default false.
     */
    default boolean splits() {
        return false;
    }

    /**
     * A full step for rows {@code [0, fullRows)} and a cached step for the rest, in one call: the
     * output of every row, and the full rows' features {@code [features, fullRows, T, D]}. The
     * slots hold the cached rows only ({@code [features, N - fullRows, T, D]}), combined as in
     * {@link #cached}. Each row equals that of {@link #full} or {@link #cached} on its own rows,
     * within float rounding. Only called when {@link #splits()}.
     */
    default Full<T> split(T x, float[] timesteps, Conditioning conditioning, int fullRows, List<T> slots,
            double[] coefficients) {
        throw new UnsupportedOperationException("this engine has no split step");
    }

    /**
     * Whether {@link #masked} is one call. A generation then runs a step where some features
     * compute and the others reuse or forecast (a per-block schedule's mixed step), every row
     * alike, in one call instead of the stages. By default false.
     */
    default boolean masks() {
        return false;
    }

    /**
     * A step where each feature either computes or takes cached values, every row alike, in one
     * call. {@code terms[f]} (one per feature, forward order) is 0 for a feature that computes,
     * else how many of {@code values} (each {@code [N, T, D]}, taken in order) it combines as
     * {@code sum_j coefficients[j] * values[j]}; a single value with coefficient 1 is reused as
     * it is. Returns the output and the computed features stacked {@code [computed, N, T, D]} in
     * forward order. Equals the staged forward with the same decisions, within float rounding.
     * Only called when {@link #masks()}.
     */
    default Full<T> masked(T x, float[] timesteps, Conditioning conditioning, int[] terms, List<T> values,
            double[] coefficients) {
        throw new UnsupportedOperationException("this engine has no masked step");
    }

    /**
     * Whether {@link #head} and {@link #tail} are one call each. A step of policies that decide from
     * the first block's change whether to run the others or add their cached residual
     * (First-Block-Cache) then takes a head call and a tail call per kind of image, where the stages
     * take a call per branch. By default false.
     */
    default boolean spans() {
        return false;
    }

    /**
     * The embedding and blocks {@code [0, blocks)} in one call, every block computed, in the current
     * scope. Equals the stages within float rounding. Only called when {@link #spans()}.
     */
    default Head<T> head(T x, float[] timesteps, Conditioning conditioning, int blocks) {
        throw new UnsupportedOperationException("this engine has no head step");
    }

    /**
     * Blocks {@code [from, depth)} over {@code tokens} that left block {@code from - 1}, every block
     * computed, then the final layer; {@code conditioning} is {@link Head#conditioning()} (of these
     * rows). {@code from == depth} runs the final layer alone. Only called when {@link #spans()}.
     */
    default Tail<T> tail(T tokens, T conditioning, int from) {
        throw new UnsupportedOperationException("this engine has no tail step");
    }

    /**
     * Whether {@link #splitWithTails} is one call. A scheduler then lets the tails of a
     * First-Block-Cache pass ride along the other runs' call: their rows cost their arithmetic in
     * either call, so the fixed cost of the tails' own call (on a small model, some 100 operations)
     * is saved. By default false.
     */
    default boolean carriesTails() {
        return false;
    }

    /**
     * {@link #split} with {@code tails} riding along: their computing rows run blocks {@code 1..}
     * in the same products as the full rows, and every row takes the final layer together. Each
     * row equals {@link #split}'s or {@link #tail}'s within float rounding. {@code fullRows} may be
     * 0 or every row ({@code slots} then hold no rows). Only called when {@link #carriesTails()}.
     */
    default SplitWithTails<T> splitWithTails(T x, float[] timesteps, Conditioning conditioning, int fullRows, List<T> slots,
            double[] coefficients, Tails<T> tails) {
        throw new UnsupportedOperationException("this engine carries no tails");
    }
}
