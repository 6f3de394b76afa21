package dev.fora.core.engine;

import dev.fora.core.cache.BlockRange;
import dev.fora.core.cache.CacheDecider;
import dev.fora.core.engine.CacheBudgetException;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.cache.Measurement;
import dev.fora.core.model.DiTConfig;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * What a policy declared for a generation of a model, checked against that model: the history
 * it keeps, the measurements and block ranges it needs, whether its steps can be fused, and the
 * most bytes its cache can hold (the budget check).
 */
final class Declarations {

    final CachePolicy policy;
    final GenerationInfo info;
    final int historyLength;
    final List<Measurement> measured;
    final boolean measuresComputedChange;
    final List<BlockRange> ranges;

    Declarations(CachePolicy policy, GenerationInfo info) {
        this.policy = Objects.requireNonNull(policy, "policy");
        this.info = info;
        DiTConfig config = info.config();
        int history = policy.historyLength();
        if (history < 0) {
            throw new IllegalArgumentException("policy " + policy + " declares a negative historyLength: " + history);
        }
        this.historyLength = Math.min(history, info.totalSteps());
        this.ranges = checkedRanges(Objects.requireNonNull(policy.blockRanges(info), "blockRanges"), config);
        Set<Measurement> declared = Objects.requireNonNull(policy.measurements(info), "measurements");
        this.measured = checkedMeasurements(declared, config);
        this.measuresComputedChange = declared.contains(Measurement.computedChange());
    }

    /** The policy's spec, or its string form: how errors name it. */
    String describe() {
        return describe(policy);
    }

    static String describe(CachePolicy policy) {
        return policy.spec().orElse(String.valueOf(policy));
    }

    /** Whether every decision of a step can be made before it runs: nothing measured, no ranges. */
    boolean fusable() {
        return measured.isEmpty() && !measuresComputedChange && ranges.isEmpty();
    }

    /** Measurements that keep their previous value as a tensor. */
    long referenceCount() {
        return measured.stream().filter(m -> !(m instanceof Measurement.ResidualMagnitude)).count();
    }

    /** The most bytes this policy's cache can hold for {@code info}'s rows: every value, reference and residual. */
    long worstCaseBytes() {
        DiTConfig c = info.config();
        long perTensor = info.rows() * c.featureBytesPerRow();
        return ((long) historyLength * c.features() + referenceCount() + ranges.size()) * perTensor;
    }

    /** A new decider of the policy for this generation's info, never null. */
    CacheDecider newDecider() {
        CacheDecider d = policy.newDecider(info);
        if (d == null) {
            throw new IllegalStateException("policy " + describe() + " returned no decider (newDecider gave null)");
        }
        return d;
    }

    /** Refuses a policy whose worst case exceeds {@code budget}. */
    void checkBudget(long budget) {
        long need = worstCaseBytes();
        if (need > budget) {
            DiTConfig c = info.config();
            long references = referenceCount();
            throw new CacheBudgetException(describe(), need, budget, historyLength + " computed value(s) of "
                    + c.features() + " features" + (references == 0 ? "" : ", " + references
                    + " measurement reference(s)") + (ranges.isEmpty() ? "" : ", " + ranges.size() + " block-range residual(s)")
                    + ", each " + info.rows() + " rows x " + c.tokens() + " tokens x " + c.hiddenSize() + " float32");
        }
    }

    boolean keeps(BlockRange range) {
        return ranges.contains(range);
    }

    private List<Measurement> checkedMeasurements(Set<Measurement> declared, DiTConfig config) {
        List<Measurement> out = new ArrayList<>();
        for (Measurement m : declared) {
            if (m instanceof Measurement.ModulatedInputChange mi) {
                checkBlock(m, mi.block(), config);
            } else if (m instanceof Measurement.ResidualChange r) {
                checkBlock(m, r.block(), config);
            } else if (m instanceof Measurement.ResidualMagnitude r) {
                if (!ranges.contains(r.range())) {
                    throw new IllegalArgumentException("policy " + describe() + " declares " + m + " but not "
                            + r.range() + " in blockRanges(): the magnitude is taken when that residual is stored");
                }
            } else {
                continue;
            }
            out.add(m);
        }
        return List.copyOf(out);
    }

    private void checkBlock(Measurement m, int block, DiTConfig config) {
        if (block < 0 || block >= config.depth()) {
            throw new IllegalArgumentException("policy " + describe() + " declares " + m + " but the model has blocks 0.."
                    + (config.depth() - 1));
        }
    }

    private List<BlockRange> checkedRanges(Set<BlockRange> declared, DiTConfig config) {
        List<BlockRange> out = new ArrayList<>();
        for (BlockRange r : declared) {
            if (r.to() > config.depth()) {
                throw new IllegalArgumentException("policy " + describe() + " declares " + r + " but the model has blocks 0.."
                        + (config.depth() - 1));
            }
            out.add(r);
        }
        out.sort(Comparator.comparingInt(BlockRange::from).thenComparingInt(BlockRange::to));
        return List.copyOf(out);
    }
}
