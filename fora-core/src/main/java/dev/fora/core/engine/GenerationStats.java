package dev.fora.core.engine;

import dev.fora.core.cache.BlockRange;
import dev.fora.core.cache.Decision;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.model.DiTConfig;
import java.util.List;
import java.util.Locale;

/**
 * What caching did during one generation: for every step, image, block and branch whether
 * the branch was computed, reused or forecast (a branch skipped with its block range's cached
 * residual counts as reused), and the cache's peak memory. Always recorded;
 * one byte per (step, decider, feature). A decider is an image, or one CFG half of it when the
 * policy decides the halves separately.
 *
 * <p>Two speed-up figures are given, both bounds that ignore the embedder, the final layer
 * and per-step overhead:
 * <ul>
 * <li>{@link #speedup()}: branch evaluations of an uncached run divided by branch evaluations
 *     computed here (FORA's "2.78x" at {@code K = 50, N = 3});</li>
 * <li>{@link #flopSpeedup()}: the same ratio weighted by each branch's FLOPs
 *     ({@link DiTConfig#branchFlopsPerSample(int)}). Reuse and forecasts count as free.</li>
 * </ul>
 */
public final class GenerationStats {

    private static final Decision.Kind[] KINDS = Decision.Kind.values();

    private final int totalSteps;
    private final int images;
    private final int units;
    private final int depth;
    private final int branches;
    private final double[] branchFlops;
    private final byte[][][] decisions;
    private int stepsRun;
    private long peakCacheBytes;
    private int residualReuses;

    GenerationStats(GenerationInfo info, int units) {
        DiTConfig config = info.config();
        this.totalSteps = info.totalSteps();
        this.images = info.images();
        this.units = units;
        this.depth = config.depth();
        this.branches = config.branches();
        this.branchFlops = new double[branches];
        for (int i = 0; i < branches; i++) {
            branchFlops[i] = config.branchFlopsPerSample(i);
        }
        this.decisions = new byte[totalSteps][][];
    }

    /**
     * The stats of a run that computed everything (a model run without a cache, such as a
     * whole-model forward): every branch computed for every image at every step.
     */
    public static GenerationStats uncached(GenerationInfo info) {
        GenerationStats stats = new GenerationStats(info, info.images());
        for (int s = 0; s < info.totalSteps(); s++) {
            stats.startStep(s);
            for (byte[] unit : stats.decisions[s]) {
                java.util.Arrays.fill(unit, (byte) (Decision.Kind.COMPUTE.ordinal() + 1));
            }
        }
        return stats;
    }

    /**
     * The stats of {@code n} images that ran as separate runs (a request served image by image),
     * as the stats of one batch: image {@code k} is {@code perImage.get(k)}, in the layout a
     * {@link Generation} of {@code n} images has. The peak cache is the sum of the runs' peaks
     * (an upper bound: the runs need not have peaked together).
     *
     * @throws IllegalArgumentException if the runs differ in steps run, or in deciders per image
     */
    public static GenerationStats ofImages(List<GenerationStats> perImage) {
        if (perImage.isEmpty()) {
            throw new IllegalArgumentException("no images");
        }
        GenerationStats first = perImage.get(0);
        int n = perImage.size();
        for (GenerationStats s : perImage) {
            if (s.images != 1 || s.units != first.units || s.stepsRun != first.stepsRun || s.totalSteps != first.totalSteps
                    || s.depth != first.depth || s.branches != first.branches) {
                throw new IllegalArgumentException("the runs of one batch must have one image each, the same steps and model");
            }
        }
        GenerationStats out = new GenerationStats(first, n);
        for (int s = 0; s < first.stepsRun; s++) {
            out.decisions[s] = new byte[out.units][];
            for (int k = 0; k < n; k++) {
                for (int half = 0; half < first.units; half++) {
                    out.decisions[s][half * n + k] = perImage.get(k).decisions[s][half].clone();
                }
            }
        }
        for (GenerationStats s : perImage) {
            out.peakCacheBytes += s.peakCacheBytes;
            out.residualReuses += s.residualReuses;
        }
        out.stepsRun = first.stepsRun;
        return out;
    }

    private GenerationStats(GenerationStats image, int images) {
        this.totalSteps = image.totalSteps;
        this.images = images;
        this.units = image.units * images;
        this.depth = image.depth;
        this.branches = image.branches;
        this.branchFlops = image.branchFlops.clone();
        this.decisions = new byte[totalSteps][][];
    }

    void startStep(int step) {
        decisions[step] = new byte[units][depth * branches];
        stepsRun = step + 1;
    }

    void record(int step, int unit, int feature, Decision.Kind kind) {
        decisions[step][unit][feature] = (byte) (kind.ordinal() + 1);
    }

    /**
     * Records that {@code unit} skipped the blocks of {@code range} at {@code step} with their
     * cached residual: every branch of those blocks counts as reused.
     */
    void recordResidualReuse(int step, int unit, BlockRange range) {
        for (int b = range.from(); b < range.to(); b++) {
            for (int i = 0; i < branches; i++) {
                record(step, unit, b * branches + i, Decision.Kind.REUSE);
            }
        }
        residualReuses++;
    }

    void updatePeakCacheBytes(long peak) {
        peakCacheBytes = Math.max(peakCacheBytes, peak);
    }

    /** Number of sampler steps of the generation. */
    public int totalSteps() {
        return totalSteps;
    }

    /** Steps run so far. */
    public int stepsRun() {
        return stepsRun;
    }

    /** Images in the batch. */
    public int images() {
        return images;
    }

    /**
     * The decision taken for one image's (step, block, branch); for an image whose CFG halves
     * decide separately, its conditional half's.
     *
     * @throws IllegalArgumentException if that step has not run (or did not reach the block)
     */
    public Decision.Kind decision(int step, int image, int block, int branch) {
        if (step < 0 || step >= stepsRun || image < 0 || image >= images || block < 0 || block >= depth || branch < 0
                || branch >= branches) {
            throw new IllegalArgumentException("no decision recorded for step " + step + ", image " + image + ", block " + block
                    + ", branch " + branch + " (steps run: " + stepsRun + ", images: " + images + ", depth: " + depth
                    + ", branches: " + branches + ")");
        }
        byte code = decisions[step][image][block * branches + branch];
        if (code == 0) {
            throw new IllegalArgumentException("step " + step + " did not reach block " + block + " branch " + branch);
        }
        return KINDS[code - 1];
    }

    /** How many (image, branch) evaluations had the given outcome, over all steps and blocks. */
    public int count(Decision.Kind kind) {
        int n = 0;
        for (int b = 0; b < branches; b++) {
            n += count(kind, b);
        }
        return n;
    }

    /** How many evaluations of branch {@code branch} (a layout index) had the given outcome. */
    public int count(Decision.Kind kind, int branch) {
        int n = 0;
        for (int u = 0; u < units; u++) {
            n += count(kind, branch, u);
        }
        return n;
    }

    private int count(Decision.Kind kind, int branch, int unit) {
        int n = 0;
        for (int s = 0; s < stepsRun; s++) {
            for (int b = 0; b < depth; b++) {
                n += decisions[s][unit][b * branches + branch] == kind.ordinal() + 1 ? 1 : 0;
            }
        }
        return n;
    }

    /** Whether step {@code step} computed every branch of every block for every image. */
    public boolean isFullStep(int step) {
        return everyDecisionIs(step, Decision.Kind.COMPUTE, true);
    }

    /** Whether step {@code step} computed no branch at all (every image reused or forecast everything). */
    public boolean isCachedStep(int step) {
        return everyDecisionIs(step, Decision.Kind.COMPUTE, false);
    }

    private boolean everyDecisionIs(int step, Decision.Kind kind, boolean is) {
        if (step < 0 || step >= stepsRun) {
            throw new IllegalArgumentException("step " + step + " has not run (steps run: " + stepsRun + ")");
        }
        for (byte[] unit : decisions[step]) {
            for (byte code : unit) {
                if ((code == kind.ordinal() + 1) != is) {
                    return false;
                }
            }
        }
        return true;
    }

    /**
     * How many times a decider skipped a block range with its cached residual
     * ({@link Decision#reuseResidual}); the skipped branches are also counted as
     * {@link Decision.Kind#REUSE}.
     */
    public int residualReuses() {
        return residualReuses;
    }

    /** Steps in which every branch of every block was computed for every image. */
    public int fullSteps() {
        int n = 0;
        for (int s = 0; s < stepsRun; s++) {
            n += isFullStep(s) ? 1 : 0;
        }
        return n;
    }

    /** Computed branch evaluations divided by all branch evaluations, over every image (1.0 without caching). */
    public double computeFraction() {
        long all = (long) stepsRun * units * depth * branches;
        return all == 0 ? 1.0 : (double) count(Decision.Kind.COMPUTE) / all;
    }

    /** {@link #computeFraction()} of one image. */
    public double computeFraction(int image) {
        checkImage(image);
        long all = 0;
        long computed = 0;
        for (int u = image; u < units; u += images) {
            for (int b = 0; b < branches; b++) {
                computed += count(Decision.Kind.COMPUTE, b, u);
            }
            all += (long) stepsRun * depth * branches;
        }
        return all == 0 ? 1.0 : (double) computed / all;
    }

    /** {@code 1 / computeFraction()}: the branch-count speed-up bound. */
    public double speedup() {
        return 1.0 / computeFraction();
    }

    /** Computed branch FLOPs divided by the branch FLOPs of an uncached run, over every image. */
    public double flopComputeFraction() {
        double all = 0;
        double computed = 0;
        for (int b = 0; b < branches; b++) {
            all += (double) stepsRun * units * depth * branchFlops[b];
            computed += count(Decision.Kind.COMPUTE, b) * branchFlops[b];
        }
        return all == 0 ? 1.0 : computed / all;
    }

    /** {@code 1 / flopComputeFraction()}: the branch-FLOP speed-up bound. */
    public double flopSpeedup() {
        return 1.0 / flopComputeFraction();
    }

    /** The most bytes the feature cache held during the generation. */
    public long peakCacheBytes() {
        return peakCacheBytes;
    }

    /**
     * One line per step; per image (separated by {@code |}), one character per (block, branch)
     * in forward order: {@code C} computed, {@code R} reused, {@code F} forecast.
     */
    public String decisionMap() {
        StringBuilder sb = new StringBuilder();
        for (int s = 0; s < stepsRun; s++) {
            sb.append(String.format(Locale.ROOT, "%4d ", s));
            for (int u = 0; u < units; u++) {
                if (u > 0) {
                    sb.append('|');
                }
                for (byte code : decisions[s][u]) {
                    sb.append(code == 0 ? '.' : KINDS[code - 1].name().charAt(0));
                }
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    private void checkImage(int image) {
        if (image < 0 || image >= images) {
            throw new IllegalArgumentException("image " + image + " outside 0.." + (images - 1));
        }
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT,
                "%d/%d steps, %d full, compute fraction %.3f (%.2fx), FLOP speed-up %.2fx, peak cache %d bytes",
                stepsRun, totalSteps, fullSteps(), computeFraction(), speedup(), flopSpeedup(), peakCacheBytes);
    }
}
