package dev.fora.core.engine;

import dev.fora.core.cache.BlockRange;
import dev.fora.core.cache.Decision;
import dev.fora.core.cache.Measurement;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.FusedSteps;
import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

/**
 * A measuring pass in three calls, for deciders that decide a step from its first block
 * (First-Block-Cache's shape): they measure at most block 0's residual change, keep no branch
 * values, and skip at most blocks {@code 1..depth-1} at once. Block 0 then always computes, and
 * a decider's answer at block 1 settles the rest of its step. So the embedding and block 0 take
 * one {@linkplain FusedSteps#head head} call; the images that compute take the other blocks and
 * the final layer in one {@linkplain FusedSteps#tail tail} call, and those that skip add their
 * cached residual and take the final layer in another. The stages would take a call per branch.
 * Each decider is asked about every feature in forward order, as the stages ask it, and its rows
 * never mix with another's.
 *
 * @param <T> tensor type
 */
final class HeadTailForward<T extends Tensor> {

    private final PassLayout<T> layout;
    private final TensorOps<T> ops;
    private final DiTConfig config;
    private final FusedSteps<T> fused;
    private final BlockRange rest;

    HeadTailForward(PassLayout<T> layout, FusedSteps<T> fused) {
        this.layout = layout;
        this.ops = layout.ops;
        this.config = layout.model.config();
        this.fused = fused;
        this.rest = new BlockRange(1, config.depth());
    }

    /** Whether every decider of a pass has that shape, on a model of more than one block. */
    static boolean fits(List<? extends DeciderState<?>> states, DiTConfig config) {
        if (config.depth() < 2) {
            return false;
        }
        BlockRange rest = new BlockRange(1, config.depth());
        Measurement first = Measurement.residualChange(0);
        for (DeciderState<?> s : states) {
            Declarations d = s.declarations;
            if (d.historyLength > 0 || d.measuresComputedChange || d.measured.stream().anyMatch(m -> !m.equals(first))
                    || d.ranges.stream().anyMatch(r -> !r.equals(rest))) {
                return false;
            }
        }
        return true;
    }

    /** The model output of the pass with tail calls of its own, in the caller's current scope. */
    T run(T x, float[] timesteps, Conditioning conditioning) {
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
            Begun begun = begin(x, timesteps, conditioning);
            begun.endAlone();
            return ops.attach(begun.output(), outer);
        }
    }

    /**
     * The head call and every decision of the pass; its tails then wait for a call, its own
     * ({@link Begun#endAlone()}) or another pass's that carries them ({@link Begun#end}). What it
     * makes lives in the caller's current scope.
     */
    Begun begin(T x, float[] timesteps, Conditioning conditioning) {
        List<DeciderState<T>> states = layout.states;
        // with no values kept and no range from block 0, any answer but COMPUTE fails its decider (which computes)
        for (int i = 0; i < config.branches(); i++) {
            for (DeciderState<T> s : states) {
                s.stats.record(s.step.step(), s.index, config.feature(0, i), Asking.ask(s, 0, i).kind());
            }
        }
        FusedSteps.Head<T> head = fused.head(x, timesteps, conditioning, 1);
        Measurement change = Measurement.residualChange(0);
        Measuring<T> measuring = new Measuring<>(layout);
        List<Integer> measured = measuring.declaring(change, IntStream.range(0, states.size()).boxed().toList());
        if (measured.isEmpty()) {
            head.residual().close();
        } else {
            measuring.change(change, head.residual(), measured);
        }
        List<Integer> compute = new ArrayList<>();
        List<Integer> skip = new ArrayList<>();
        for (int u = 0; u < states.size(); u++) {
            DeciderState<T> s = states.get(u);
            Decision atBlock1 = Asking.ask(s, 1, 0);
            if (atBlock1.kind() == Decision.Kind.REUSE_RESIDUAL) { // checked: it ends at the depth
                skip.add(u);
                s.stats.recordResidualReuse(s.step.step(), s.index, rest);
                continue;
            }
            compute.add(u);
            for (int b = 1; b < config.depth(); b++) {
                for (int i = 0; i < config.branches(); i++) {
                    Decision d = b == 1 && i == 0 ? atBlock1 : Asking.ask(s, b, i);
                    s.stats.record(s.step.step(), s.index, config.feature(b, i), d.kind());
                }
            }
        }
        return new Begun(head, compute, skip);
    }

    /** A pass whose head ran: the images that compute the other blocks, and those that skip them. */
    final class Begun {

        private final TensorScope scope = ops.currentScope();
        private final int[] computeRows;
        private final int[] skipRows;
        private final List<Integer> keeping;
        /** Tokens leaving block 0 of the computing images, and of the skipping ones with their residual added; conditioning of each. */
        private final T computeTokens;
        private final T computeConditioning;
        private final T skipTokens;
        private final T skipConditioning;
        private T output;

        private Begun(FusedSteps.Head<T> head, List<Integer> compute, List<Integer> skip) {
            computeRows = layout.rowsOf(compute);
            skipRows = layout.rowsOf(skip);
            keeping = compute.stream().filter(u -> layout.states.get(u).declarations.keeps(rest)).toList();
            computeTokens = compute.isEmpty() ? null : rowsOf(head.tokens(), compute, computeRows);
            computeConditioning = compute.isEmpty() ? null : rowsOf(head.conditioning(), compute, computeRows);
            if (skip.isEmpty()) {
                skipTokens = null;
                skipConditioning = null;
            } else {
                try (Gathered<T> residual = layout.gather(skipRows, s -> s.residual(rest))) {
                    skipTokens = ops.add(rowsOf(head.tokens(), skip, skipRows), residual.tensor());
                }
                skipConditioning = rowsOf(head.conditioning(), skip, skipRows);
            }
        }

        /** The tails for a call that carries them: the computing images' rows, then the skipping ones'. */
        FusedSteps.Tails<T> tails() {
            return new FusedSteps.Tails<>(joined(computeTokens, skipTokens), joined(computeConditioning, skipConditioning),
                    computeRows.length);
        }

        /** Ends the pass with tail calls of its own: one for the images that compute, one for those that skip. */
        void endAlone() {
            FusedSteps.Tail<T> computed = computeTokens == null ? null : fused.tail(computeTokens, computeConditioning, rest.from());
            T skipped = skipTokens == null ? null : fused.tail(skipTokens, skipConditioning, config.depth()).output();
            end(joined(computed == null ? null : computed.output(), skipped), computed == null ? null : computed.tokens());
        }

        /**
         * Ends the pass with the tails' output (the rows of {@link #tails()}) and the tokens its
         * computing images entered the final layer with: keeps their residuals.
         */
        void end(T tailOutput, T tailTokens) {
            if (!keeping.isEmpty()) {
                T delta = ops.sub(tailTokens, computeTokens);
                int[] keptRows = layout.rowsOf(keeping);
                if (keptRows.length < computeRows.length) { // the cache counts every row it holds
                    T theirs = ops.gatherRows(delta, PassLayout.positions(computeRows, keptRows));
                    delta.close();
                    delta = theirs;
                }
                layout.keepResidual(rest, keeping, keptRows, delta);
            }
            if (computeRows.length == 0 || skipRows.length == 0) {
                output = ops.attach(tailOutput, scope); // one kind: the whole batch, in order
                return;
            }
            int[] order = new int[layout.rows];
            for (int i = 0; i < computeRows.length; i++) {
                order[computeRows[i]] = i;
            }
            for (int i = 0; i < skipRows.length; i++) {
                order[skipRows[i]] = computeRows.length + i;
            }
            output = ops.attach(ops.gatherRows(tailOutput, order), scope);
        }

        /** The pass's model output once it ended, in the scope it began in. */
        T output() {
            return output;
        }

        private T joined(T first, T second) {
            return first == null ? second : second == null ? first : ops.concatBatch(List.of(first, second));
        }
    }

    /** Rows {@code rows} (those of {@code group}) of a whole-batch tensor: the tensor itself for the whole batch. */
    private T rowsOf(T whole, List<Integer> group, int[] rows) {
        return layout.isWholeBatch(group) ? whole : ops.gatherRows(whole, rows);
    }
}
