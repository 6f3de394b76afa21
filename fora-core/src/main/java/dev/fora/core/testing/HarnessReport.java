package dev.fora.core.testing;

import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.Decision;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.engine.GenerationStats;
import dev.fora.core.model.DiTConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The result of {@link PolicyHarness#run}: what the policy decided, how much it computed,
 * and how far its final output is from the uncached output.
 */
public final class HarnessReport {

    private final CachePolicy policy;
    private final GenerationInfo info;
    private final DiTConfig config;
    private final GenerationStats stats;
    private final float[] output;
    private final float[] reference;
    private final long leakedTensors;

    HarnessReport(CachePolicy policy, GenerationInfo info, GenerationStats stats, float[] output, float[] reference,
            long leakedTensors) {
        this.policy = policy;
        this.info = info;
        this.config = info.config();
        this.stats = stats;
        this.output = output;
        this.reference = reference;
        this.leakedTensors = leakedTensors;
    }

    /** The policy that ran. */
    public CachePolicy policy() {
        return policy;
    }

    /** Full per-(step, block, branch) statistics. */
    public GenerationStats stats() {
        return stats;
    }

    /** The decision for one image's (step, block, branch), the branch named as in the model's layout. */
    public Decision.Kind decision(int step, int image, int block, String branch) {
        return stats.decision(step, image, block, config.layout().indexOf(branch));
    }

    /** Computed branch evaluations over all branch evaluations, over every image. */
    public double computeFraction() {
        return stats.computeFraction();
    }

    /** Computed branch evaluations over all branch evaluations of one image. */
    public double computeFraction(int image) {
        return stats.computeFraction(image);
    }

    /** Steps in which every branch of every image was computed. */
    public int fullSteps() {
        return stats.fullSteps();
    }

    /**
     * The steps where the policy's declared {@link CachePolicy#fullSteps full steps} disagree
     * with what its deciders did: a declared full step that did not compute every feature of
     * every image, or another step that computed any. Empty when they agree, or when the policy
     * declares none.
     */
    public List<Integer> fullStepsMismatches() {
        List<Integer> wrong = new ArrayList<>();
        policy.fullSteps(info).ifPresent(full -> {
            for (int s = 0; s < stats.stepsRun(); s++) {
                if (full.get(s) ? !stats.isFullStep(s) : !stats.isCachedStep(s)) {
                    wrong.add(s);
                }
            }
        });
        return wrong;
    }

    /** {@code max |output - uncached|} over the final samples. */
    public double maxAbsError() {
        double max = 0;
        for (int i = 0; i < output.length; i++) {
            max = Math.max(max, Math.abs((double) output[i] - reference[i]));
        }
        return max;
    }

    /** {@code mean |output - uncached| / mean |uncached|} over the final samples. */
    public double relativeL1Error() {
        double num = 0;
        double den = 0;
        for (int i = 0; i < output.length; i++) {
            num += Math.abs((double) output[i] - reference[i]);
            den += Math.abs(reference[i]);
        }
        return den == 0 ? num : num / den;
    }

    /** Tensors still alive after the generation closed (should be 0). */
    public long leakedTensors() {
        return leakedTensors;
    }

    /** The final samples of the policy run (a copy). */
    public float[] output() {
        return output.clone();
    }

    /** The final samples of the uncached run (a copy). */
    public float[] reference() {
        return reference.clone();
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%s: compute fraction %.3f, %d full steps, max abs error %.4g, relative L1 error %.4g",
                policy.spec().orElse(policy.toString()), computeFraction(), fullSteps(), maxAbsError(), relativeL1Error());
    }
}
