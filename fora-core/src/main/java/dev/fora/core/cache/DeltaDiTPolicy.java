package dev.fora.core.cache;

import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

/**
 * Delta-DiT-style stage-adaptive block-range caching ({@code deltadit:N,C} or
 * {@code deltadit:N,C,B}; Chen et al., "Delta-DiT: A Training-Free Acceleration Method
 * Tailored for Diffusion Transformers", arXiv 2406.01125, 2024). The paper finds that a DiT's
 * front blocks shape the outline of the image and its rear blocks the details, and caches the
 * deviation {@code Delta = h_out - h_in} of a range of {@code C} blocks (its "Delta-Cache")
 * where the image can afford it: the rear blocks during the early, outline steps, and the
 * front blocks during the later, detail steps. Here: every step with FORA's refresh rule for
 * interval {@code N} (the first step, and {@code loopIndex % N == 0}) computes everything and
 * stores both ranges' residuals; on the other steps before step {@code B} (default: half the
 * steps) each image skips blocks {@code depth-C..depth-1} with their cached residual
 * ({@link Decision#reuseResidual}), and from step {@code B} on blocks {@code 0..C-1}.
 * {@code C} must not exceed the depth.
 */
public final class DeltaDiTPolicy implements CachePolicy {

    private final StaticIntervalPolicy schedule;
    private final int cachedBlocks;
    private final OptionalInt boundary;

    /**
     * @param interval FORA interval {@code N >= 1} of the full steps
     * @param cachedBlocks blocks {@code C >= 1} in the skipped range
     * @param boundary the first step {@code B >= 0} that skips the front range instead of the
     *     rear one; empty for half the steps ({@code K / 2})
     */
    public DeltaDiTPolicy(int interval, int cachedBlocks, OptionalInt boundary) {
        this.schedule = new StaticIntervalPolicy(interval);
        if (cachedBlocks < 1) {
            throw new IllegalArgumentException("deltadit cached block count C must be >= 1, got " + cachedBlocks);
        }
        if (boundary.isPresent() && boundary.getAsInt() < 0) {
            throw new IllegalArgumentException("deltadit boundary step B must be >= 0, got " + boundary.getAsInt());
        }
        this.cachedBlocks = cachedBlocks;
        this.boundary = boundary;
    }

    /** The FORA interval of the full steps. */
    public int interval() {
        return schedule.interval();
    }

    /** Blocks in the skipped range, {@code C}. */
    public int cachedBlocks() {
        return cachedBlocks;
    }

    /** The step at which skipping moves from the rear to the front blocks in a generation of {@code steps} steps. */
    public int boundary(int steps) {
        return boundary.orElse(steps / 2);
    }

    private BlockRange front() {
        return new BlockRange(0, cachedBlocks);
    }

    private BlockRange rear(int depth) {
        return new BlockRange(depth - cachedBlocks, depth);
    }

    @Override
    public Set<BlockRange> blockRanges(GenerationInfo info) {
        int depth = info.config().depth();
        if (cachedBlocks > depth) {
            return Set.of();
        }
        return cachedBlocks == depth ? Set.of(front()) : Set.of(front(), rear(depth));
    }

    @Override
    public int historyLength() {
        return 0;
    }

    /** @throws IllegalArgumentException if {@code C} exceeds the model's depth or {@code B} the step count */
    @Override
    public CacheDecider newDecider(GenerationInfo info) {
        int depth = info.config().depth();
        if (cachedBlocks > depth) {
            throw new IllegalArgumentException("deltadit caches " + cachedBlocks + " blocks but the model has " + depth);
        }
        int b = boundary(info.totalSteps());
        if (b > info.totalSteps()) {
            throw new IllegalArgumentException("deltadit boundary step " + b + " lies after the last step of "
                    + info.totalSteps());
        }
        BlockRange front = front();
        BlockRange rear = rear(depth);
        return ctx -> {
            if (schedule.isFullStep(ctx.step()) || ctx.branchIndex() != 0) {
                return Decision.COMPUTE;
            }
            BlockRange range = ctx.step().step() < b ? rear : front;
            if (ctx.block() == range.from() && ctx.residualComputedAt(range).isPresent()) {
                return Decision.reuseResidual(range.to());
            }
            return Decision.COMPUTE;
        };
    }

    @Override
    public Optional<String> spec() {
        return Optional.of(boundary.isPresent()
                ? BuiltInPolicyTypes.DELTADIT.spec(schedule.interval(), cachedBlocks, boundary.getAsInt())
                : BuiltInPolicyTypes.DELTADIT.spec(schedule.interval(), cachedBlocks));
    }

    @Override
    public String toString() {
        return spec().orElseThrow();
    }
}
