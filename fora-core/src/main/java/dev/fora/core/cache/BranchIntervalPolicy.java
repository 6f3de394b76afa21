package dev.fora.core.cache;

import dev.fora.core.engine.Generation;
import dev.fora.core.model.BlockLayout;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Per-branch refresh intervals ({@code pab:attn=2,mlp=4}), after Pyramid Attention Broadcast
 * (Zhao et al., "Real-Time Video Generation with Pyramid Attention Broadcast", arXiv 2408.12588,
 * 2024), which reuses ("broadcasts") each kind of attention over its own range of steps
 * because they change at different rates. Each named branch of the model's
 * {@link BlockLayout} refreshes on FORA's rule with its own interval: it computes at the first
 * step and when {@code loopIndex % N_branch == 0}, and reuses its last computed value
 * otherwise, in every block. Branches not named compute at every step. PAB restricts
 * broadcasting to a middle window of the steps; compose with {@code warmup:} and
 * {@code cooldown:} for that.
 */
public final class BranchIntervalPolicy implements CachePolicy {

    private final Map<String, Integer> intervals;

    /**
     * @param intervals refresh interval {@code >= 1} per branch name, in the order the spec lists them
     * @throws IllegalArgumentException if empty or an interval is below 1
     */
    public BranchIntervalPolicy(Map<String, Integer> intervals) {
        Objects.requireNonNull(intervals, "intervals");
        if (intervals.isEmpty()) {
            throw new IllegalArgumentException("pab needs at least one branch interval, like pab:attn=2,mlp=3");
        }
        for (Map.Entry<String, Integer> e : intervals.entrySet()) {
            if (e.getValue() == null || e.getValue() < 1) {
                throw new IllegalArgumentException("the interval of branch " + e.getKey() + " must be >= 1, got " + e.getValue());
            }
        }
        this.intervals = new LinkedHashMap<>(intervals);
    }

    /** The interval of each named branch, in spec order (a copy). */
    public Map<String, Integer> intervals() {
        return new LinkedHashMap<>(intervals);
    }

    /**
     * @throws IllegalArgumentException if a named branch is not in the model's layout
     */
    @Override
    public CacheDecider newDecider(GenerationInfo info) {
        BlockLayout layout = info.config().layout();
        StaticIntervalPolicy[] byBranch = new StaticIntervalPolicy[layout.size()];
        for (Map.Entry<String, Integer> e : intervals.entrySet()) {
            int index;
            try {
                index = layout.indexOf(e.getKey());
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException("pab names branch \"" + e.getKey() + "\" but the model's blocks have "
                        + layout.branches(), ex);
            }
            byBranch[index] = new StaticIntervalPolicy(e.getValue());
        }
        return context -> {
            StaticIntervalPolicy interval = byBranch[context.branchIndex()];
            return interval == null || interval.isFullStep(context.step()) ? Decision.COMPUTE : Decision.REUSE;
        };
    }

    @Override
    public Optional<String> spec() {
        return Optional.of(BuiltInPolicyTypes.PAB.spec(intervals.entrySet().stream()
                .map(e -> e.getKey() + "=" + e.getValue()).toArray()));
    }

    @Override
    public String toString() {
        return spec().orElseThrow();
    }
}
