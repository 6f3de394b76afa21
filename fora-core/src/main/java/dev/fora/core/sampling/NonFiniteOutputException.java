package dev.fora.core.sampling;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import java.util.function.IntFunction;

/**
 * The model's output at a step holds NaN or infinity. Sampling on would only spread it (DDIM
 * turns it into an all-black image); its source is the model's weights or its input (noise,
 * latent), never the cache. Thrown after the step's arrays are released.
 */
public final class NonFiniteOutputException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final int step;
    private final int totalSteps;
    private final int row;

    /**
     * @param step the step whose model output is not finite
     * @param row the first row (batch index) of the output that is not finite
     * @param rowName that row as the caller names it, e.g. "image 2"
     */
    public NonFiniteOutputException(SamplingStep step, int row, String rowName) {
        super("the model output is not finite (NaN or infinity) at step " + step.step() + " of " + step.totalSteps()
                + " (timestep " + step.timestep() + "), " + rowName + ": the model's weights or its input (noise, "
                + "latent) hold NaN or infinity");
        this.step = step.step();
        this.totalSteps = step.totalSteps();
        this.row = row;
    }

    /**
     * Throws if a row of {@code output} holds NaN or infinity. One reduction per call: a row's
     * sum of absolute values is not finite exactly when the row holds NaN or infinity (or values
     * so large that the sum overflows, as broken as infinity).
     *
     * @param rowName names a row in the message (e.g. {@code r -> "image " + r})
     */
    public static <T extends Tensor> void check(TensorOps<T> ops, T output, SamplingStep step, IntFunction<String> rowName) {
        double[] sums = ops.rowAbsSums(output);
        for (int r = 0; r < sums.length; r++) {
            if (!Double.isFinite(sums[r])) {
                throw new NonFiniteOutputException(step, r, rowName.apply(r));
            }
        }
    }

    /** The step whose model output is not finite. */
    public int step() {
        return step;
    }

    /** The generation's sampler steps {@code K}. */
    public int totalSteps() {
        return totalSteps;
    }

    /** The first row (batch index) of the output that is not finite. */
    public int row() {
        return row;
    }
}
