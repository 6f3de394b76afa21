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

    /** The model output of the pass, in the caller's current scope. */
    T run(T x, float[] timesteps, Conditioning conditioning) {
        List<DeciderState<T>> states = layout.states;
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
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
            List<T> outputs = new ArrayList<>(2);
            List<int[]> outputRows = new ArrayList<>(2);
            if (!compute.isEmpty()) {
                int[] rows = layout.rowsOf(compute);
                T tokens = rowsOf(head.tokens(), compute, rows);
                FusedSteps.Tail<T> tail = fused.tail(tokens, rowsOf(head.conditioning(), compute, rows), rest.from());
                List<Integer> keeping = compute.stream().filter(u -> states.get(u).declarations.keeps(rest)).toList();
                if (!keeping.isEmpty()) {
                    layout.keepResidual(rest, keeping, rows, ops.sub(tail.tokens(), tokens));
                }
                outputs.add(tail.output());
                outputRows.add(rows);
            }
            if (!skip.isEmpty()) {
                int[] rows = layout.rowsOf(skip);
                T tokens;
                try (Gathered<T> residual = layout.gather(rows, s -> s.residual(rest))) {
                    tokens = ops.add(rowsOf(head.tokens(), skip, rows), residual.tensor());
                }
                outputs.add(fused.tail(tokens, rowsOf(head.conditioning(), skip, rows), config.depth()).output());
                outputRows.add(rows);
            }
            return ops.attach(inBatchOrder(outputs, outputRows), outer);
        }
    }

    /** Rows {@code rows} (those of {@code group}) of a whole-batch tensor: the tensor itself for the whole batch. */
    private T rowsOf(T whole, List<Integer> group, int[] rows) {
        return layout.isWholeBatch(group) ? whole : ops.gatherRows(whole, rows);
    }

    /** The parts (each holding its rows, ascending) as one tensor in batch order. */
    private T inBatchOrder(List<T> parts, List<int[]> rows) {
        if (parts.size() == 1) {
            return parts.get(0);
        }
        int[] order = new int[layout.rows];
        int offset = 0;
        for (int[] r : rows) {
            for (int i = 0; i < r.length; i++) {
                order[r[i]] = offset + i;
            }
            offset += r.length;
        }
        return ops.gatherRows(ops.concatBatch(parts), order);
    }
}
