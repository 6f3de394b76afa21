package dev.fora.core.cache;

import dev.fora.core.model.DiTConfig;
import java.util.Locale;

/**
 * What caching did during one generation: for every step, block and branch whether it was
 * computed, reused or forecast, and the cache's peak memory. Always recorded; one byte per
 * (step, block, branch).
 *
 * <p>Two speed-up figures are given, both bounds that ignore the embedder, the final layer
 * and per-step overhead:
 * <ul>
 * <li>{@link #speedup()}: branch evaluations of an uncached run divided by branch evaluations
 *     computed here (FORA's "2.78x" at {@code K = 50, N = 3});</li>
 * <li>{@link #flopSpeedup()}: the same ratio weighted by branch FLOPs from
 *     {@link DiTConfig#attentionFlopsPerSample()} ({@code 8*T*D^2 + 4*T^2*D}) and
 *     {@link DiTConfig#mlpFlopsPerSample()} ({@code 16*T*D^2}). Reuse and forecasts count as
 *     free.</li>
 * </ul>
 */
public final class GenerationStats {

    private static final Decision.Kind[] KINDS = Decision.Kind.values();

    private final int totalSteps;
    private final int depth;
    private final double attentionFlops;
    private final double mlpFlops;
    private final byte[][] decisions;
    private int stepsRun;
    private long peakCacheBytes;

    GenerationStats(int totalSteps, DiTConfig config) {
        this.totalSteps = totalSteps;
        this.depth = config.depth();
        this.attentionFlops = config.attentionFlopsPerSample();
        this.mlpFlops = config.mlpFlopsPerSample();
        this.decisions = new byte[totalSteps][];
    }

    void startStep(int step) {
        decisions[step] = new byte[2 * depth];
        stepsRun = step + 1;
    }

    void record(int step, int block, Branch branch, Decision.Kind kind) {
        decisions[step][2 * block + branch.ordinal()] = (byte) (kind.ordinal() + 1);
    }

    void updatePeakCacheBytes(long peak) {
        peakCacheBytes = Math.max(peakCacheBytes, peak);
    }

    /** Number of sampler steps of the generation. */
    public int totalSteps() {
        return totalSteps;
    }

    /** Number of blocks. */
    public int depth() {
        return depth;
    }

    /** Steps run so far. */
    public int stepsRun() {
        return stepsRun;
    }

    /**
     * The decision taken for a (step, block, branch).
     *
     * @throws IllegalArgumentException if that step has not run (or did not reach the block)
     */
    public Decision.Kind decision(int step, int block, Branch branch) {
        if (step < 0 || step >= stepsRun || block < 0 || block >= depth) {
            throw new IllegalArgumentException("no decision recorded for step " + step + ", block " + block
                    + " (steps run: " + stepsRun + ", depth: " + depth + ")");
        }
        byte code = decisions[step][2 * block + branch.ordinal()];
        if (code == 0) {
            throw new IllegalArgumentException("step " + step + " did not reach block " + block + " " + branch);
        }
        return KINDS[code - 1];
    }

    /** How many branch evaluations had the given outcome. */
    public int count(Decision.Kind kind) {
        return count(kind, Branch.ATTENTION) + count(kind, Branch.MLP);
    }

    /** How many evaluations of one branch had the given outcome. */
    public int count(Decision.Kind kind, Branch branch) {
        int n = 0;
        for (int s = 0; s < stepsRun; s++) {
            for (int b = 0; b < depth; b++) {
                if (decisions[s][2 * b + branch.ordinal()] == kind.ordinal() + 1) {
                    n++;
                }
            }
        }
        return n;
    }

    /** Steps in which every branch of every block was computed. */
    public int fullSteps() {
        int n = 0;
        for (int s = 0; s < stepsRun; s++) {
            boolean full = true;
            for (byte code : decisions[s]) {
                full &= code == Decision.Kind.COMPUTE.ordinal() + 1;
            }
            n += full ? 1 : 0;
        }
        return n;
    }

    /** Computed branch evaluations divided by all branch evaluations (1.0 without caching). */
    public double computeFraction() {
        int all = stepsRun * 2 * depth;
        return all == 0 ? 1.0 : (double) count(Decision.Kind.COMPUTE) / all;
    }

    /** {@code 1 / computeFraction()}: the block-count speed-up bound. */
    public double speedup() {
        return 1.0 / computeFraction();
    }

    /** Computed block FLOPs divided by the block FLOPs of an uncached run. */
    public double flopComputeFraction() {
        double all = stepsRun * depth * (attentionFlops + mlpFlops);
        if (all == 0) {
            return 1.0;
        }
        return (count(Decision.Kind.COMPUTE, Branch.ATTENTION) * attentionFlops
                + count(Decision.Kind.COMPUTE, Branch.MLP) * mlpFlops) / all;
    }

    /** {@code 1 / flopComputeFraction()}: the block-FLOP speed-up bound. */
    public double flopSpeedup() {
        return 1.0 / flopComputeFraction();
    }

    /** The most bytes the feature cache held during the generation. */
    public long peakCacheBytes() {
        return peakCacheBytes;
    }

    /**
     * One line per step, one character per (block, branch) in forward order:
     * {@code C} computed, {@code R} reused, {@code F} forecast.
     */
    public String decisionMap() {
        StringBuilder sb = new StringBuilder();
        for (int s = 0; s < stepsRun; s++) {
            sb.append(String.format(Locale.ROOT, "%4d ", s));
            for (byte code : decisions[s]) {
                sb.append(code == 0 ? '.' : KINDS[code - 1].name().charAt(0));
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT,
                "%d/%d steps, %d full, compute fraction %.3f (%.2fx), FLOP speed-up %.2fx, peak cache %d bytes",
                stepsRun, totalSteps, fullSteps(), computeFraction(), speedup(), flopSpeedup(), peakCacheBytes);
    }
}
