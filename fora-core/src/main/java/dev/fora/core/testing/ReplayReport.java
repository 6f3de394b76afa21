package dev.fora.core.testing;

import dev.fora.core.cache.CachePolicy;
import dev.fora.core.engine.GenerationStats;
import java.util.Locale;

/**
 * The result of {@link PolicyHarness#replay}: what the policy decided on a recording, how much
 * it computed, and its estimated error.
 *
 * <p><b>The estimate.</b> Each step of the replay starts from the recorded tokens; the policy's
 * reuse, forecasts and skips replace the recorded features of that step, and the error is
 * {@code sum |h - h_ref| / sum |h_ref - tokens|} over an image's rows of the last block's
 * output {@code h}: the one-step error the policy adds to the block stack, relative to what the
 * stack adds. {@link #estimatedError()} is its mean over the steps and images. It is open
 * loop: in a real run an error also changes the next steps' inputs, and how much a step's
 * error reaches the image depends on the sampler. It ranks policies; it does not predict a PSNR.
 */
public final class ReplayReport {

    private final CachePolicy policy;
    private final GenerationStats stats;
    private final double[][] errors;
    private final long nanos;
    private final long leakedTensors;

    ReplayReport(CachePolicy policy, GenerationStats stats, double[][] errors, long nanos, long leakedTensors) {
        this.policy = policy;
        this.stats = stats;
        this.errors = errors;
        this.nanos = nanos;
        this.leakedTensors = leakedTensors;
    }

    /** The policy that ran. */
    public CachePolicy policy() {
        return policy;
    }

    /** What the policy decided, per (step, image, block, branch). */
    public GenerationStats stats() {
        return stats;
    }

    /** Computed branch evaluations over all, over every image. */
    public double computeFraction() {
        return stats.computeFraction();
    }

    /** The branch-FLOP speed-up bound. */
    public double flopSpeedup() {
        return stats.flopSpeedup();
    }

    /** The relative one-step error of {@code image} at {@code step} (0 where everything was computed). */
    public double error(int step, int image) {
        return errors[step][image];
    }

    /** The mean relative one-step error over the steps and images: the estimate. */
    public double estimatedError() {
        double sum = 0;
        int n = 0;
        for (double[] step : errors) {
            for (double e : step) {
                sum += e;
                n++;
            }
        }
        return sum / n;
    }

    /** The largest relative one-step error of any step and image. */
    public double maxError() {
        double max = 0;
        for (double[] step : errors) {
            for (double e : step) {
                max = Math.max(max, e);
            }
        }
        return max;
    }

    /** Wall time of the replay (the policy's pass, and the uncached reference pass the first time a recording is replayed), nanoseconds. */
    public long nanos() {
        return nanos;
    }

    /** Tensors still alive after the replay (should be 0). */
    public long leakedTensors() {
        return leakedTensors;
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%s: compute fraction %.3f, FLOP speed-up %.2fx, estimated error %.4g (max %.4g), %.1f ms",
                policy.spec().orElse(policy.toString()), computeFraction(), flopSpeedup(), estimatedError(), maxError(),
                nanos / 1e6);
    }
}
