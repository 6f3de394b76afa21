package dev.fora.core.sampling;

import dev.fora.core.model.Conditioning;
import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * A sampler loop over a (respaced) {@link DiffusionSchedule}, written against
 * {@link TensorOps} so it runs on any engine.
 *
 * <p>The loop runs sampler steps {@code 0..K-1} (loop index {@code K-1} down to {@code 0}, see
 * {@link SamplingStep}), feeds the model the ORIGINAL timestep of each, and lets a
 * {@link Stepper} turn the model output into the next latent. Each step runs in
 * its own {@link TensorScope}; only the new latent survives it, and the previous latent is
 * released at once, so memory stays flat over the loop.
 *
 * <p>The model output has {@code C} channels (eps) or {@code 2C} (eps, then DiT's learned
 * variance value {@code v}); {@code C} is taken from the latent. With {@code clipDenoised}
 * the predicted {@code x_0} is clipped to {@code [-1, 1]} (DiT's {@code clip_denoised});
 * DiT's own latent-space {@code sample.py} passes {@code false}.
 *
 * <p>The {@code sample} overloads with a {@link StepListener} report each finished step
 * (for a progress bar) without changing the result; those with a {@link LoopControl} also take
 * a {@link CancelToken} and switch the finite check.
 *
 * <p><b>Stopping.</b> Before every step the loop looks at the thread's interrupt status and the
 * cancel token: an interrupted thread or a cancelled token stops it with a
 * {@link GenerationCancelledException} naming the step, after releasing its latents. The
 * interrupt status stays set, for the caller's own blocking calls to see. A model call is never
 * cut short, so the loop stops within one step.
 *
 * <p><b>Finite check.</b> Unless turned off ({@link LoopControl#checkFinite(boolean)}), the
 * model output of every step is checked with one reduction ({@link TensorOps#rowAbsSums}): NaN
 * or infinity there (broken weights, NaN noise or latent) stops the loop with a
 * {@link NonFiniteOutputException} naming the step and image, instead of sampling on to an
 * all-black image.
 */
public abstract class DiffusionSampler {

    private final DiffusionSchedule schedule;
    private final boolean clipDenoised;

    /**
     * @param schedule the respaced schedule to sample with
     * @param clipDenoised whether to clip the predicted {@code x_0} to {@code [-1, 1]}
     */
    protected DiffusionSampler(DiffusionSchedule schedule, boolean clipDenoised) {
        this.schedule = Objects.requireNonNull(schedule, "schedule");
        this.clipDenoised = clipDenoised;
    }

    /** The schedule. */
    public DiffusionSchedule schedule() {
        return schedule;
    }

    /** Number of sampler steps {@code K}. */
    public int steps() {
        return schedule.steps();
    }

    /** Whether predicted {@code x_0} is clipped to {@code [-1, 1]}. */
    public boolean clipDenoised() {
        return clipDenoised;
    }

    /**
     * An update rule that keeps no state, draws no noise and treats each batch row on its own, its
     * step entering only through per-row coefficients. Rules that are equal may step one batch whose
     * rows are at steps of their own (of samplers of their own, e.g. 20 and 50 steps), with the
     * same result for each row as its sampler's stepper alone: a scheduler does so to save calls
     * per run.
     */
    public interface RowWiseRule {

        /**
         * The next latents of {@code x} (the final sample after a last step) from the model output;
         * row {@code r} with {@code coefficients[r]} (or {@code coefficients[0]} when there is one
         * row of them, for every row). Inputs are not modified; the result is in the current scope.
         */
        <T extends Tensor> T apply(TensorOps<T> ops, double[][] coefficients, T x, T modelOutput);
    }

    /**
     * This sampler's update at a step as a {@link RowWiseRule} and the step's coefficients of it.
     *
     * @param rule the rule, equal for samplers whose rows may be stepped together
     * @param coefficients what the step gives the rule for each of its rows
     */
    public record RowWiseUpdate(RowWiseRule rule, double[] coefficients) {
    }

    /** This sampler's update at {@code step} when it is row-wise ({@link RowWiseRule}); empty (the default) otherwise. */
    public Optional<RowWiseUpdate> rowWiseUpdate(SamplingStep step) {
        return Optional.empty();
    }

    /** The per-generation update rule; holds multistep history and is closed after the loop. */
    public interface Stepper<T extends Tensor> extends AutoCloseable {

        /**
         * Turns the model output at {@code step} into the next latent (after the last step:
         * the final sample). Inputs are not modified; the result is in the current scope.
         */
        T step(SamplingStep step, T x, T modelOutput);

        /** Releases any history. */
        @Override
        void close();
    }

    /** Starts one generation's update rule. */
    public abstract <T extends Tensor> Stepper<T> newStepper(TensorOps<T> ops, NoiseSource noise);

    /**
     * Samples from noise: draws {@code x_T} of {@code shape} from {@code noise}, then runs the loop.
     *
     * @return the final sample in the caller's current scope
     */
    public <T extends Tensor> T sample(TensorOps<T> ops, DenoisingModel<T> model, long[] shape, Conditioning conditioning,
            NoiseSource noise) {
        return sample(ops, model, shape, conditioning, noise, StepListener.NONE);
    }

    /**
     * Like {@link #sample(TensorOps, DenoisingModel, long[], Conditioning, NoiseSource)}, telling
     * {@code listener} after each step (see {@link StepListener}); the result is the same as
     * without a listener.
     *
     * @return the final sample in the caller's current scope
     */
    public <T extends Tensor> T sample(TensorOps<T> ops, DenoisingModel<T> model, long[] shape, Conditioning conditioning,
            NoiseSource noise, StepListener listener) {
        Objects.requireNonNull(listener, "listener");
        return sample(ops, model, shape, conditioning, noise, LoopControl.DEFAULT.onStep(listener));
    }

    /**
     * Samples from noise under {@code control}: its listener, cancel token and finite check
     * (see the class comment).
     *
     * @return the final sample in the caller's current scope
     * @throws GenerationCancelledException if the thread is interrupted or the token cancelled
     * @throws NonFiniteOutputException if a model output holds NaN or infinity (when checked)
     */
    public <T extends Tensor> T sample(TensorOps<T> ops, DenoisingModel<T> model, long[] shape, Conditioning conditioning,
            NoiseSource noise, LoopControl control) {
        Objects.requireNonNull(control, "control");
        T start = ops.fromFloats(shape, noise.next(shape));
        try {
            return sample(ops, model, start, conditioning, noise, control);
        } finally {
            start.close();
        }
    }

    /**
     * Runs the loop from a given {@code x_T} (not released; the caller keeps it).
     *
     * @return the final sample in the caller's current scope
     */
    public <T extends Tensor> T sample(TensorOps<T> ops, DenoisingModel<T> model, T start, Conditioning conditioning,
            NoiseSource noise) {
        return sample(ops, model, start, conditioning, noise, StepListener.NONE);
    }

    /**
     * Runs the loop from a given {@code x_T} (not released; the caller keeps it), telling
     * {@code listener} after each step: {@code onStep(step, K)} for {@code step = 0..K-1}, in
     * order, on this thread, once the step's new latent exists. If the listener throws, the
     * loop stops, releases its latents and rethrows.
     *
     * @return the final sample in the caller's current scope
     */
    public <T extends Tensor> T sample(TensorOps<T> ops, DenoisingModel<T> model, T start, Conditioning conditioning,
            NoiseSource noise, StepListener listener) {
        Objects.requireNonNull(listener, "listener");
        return sample(ops, model, start, conditioning, noise, LoopControl.DEFAULT.onStep(listener));
    }

    /**
     * Runs the loop from a given {@code x_T} (not released; the caller keeps it) under
     * {@code control}: its listener, cancel token and finite check (see the class comment).
     *
     * @return the final sample in the caller's current scope
     * @throws GenerationCancelledException if the thread is interrupted or the token cancelled
     * @throws NonFiniteOutputException if a model output holds NaN or infinity (when checked)
     */
    public <T extends Tensor> T sample(TensorOps<T> ops, DenoisingModel<T> model, T start, Conditioning conditioning,
            NoiseSource noise, LoopControl control) {
        Objects.requireNonNull(control, "control");
        long[] shape = start.shape();
        if (shape.length < 2 || shape[0] != conditioning.size()) {
            throw new IllegalArgumentException("latent batch " + (shape.length == 0 ? 0 : shape[0]) + " and "
                    + conditioning.size() + " conditioning rows differ");
        }
        int k = steps();
        TensorScope outer = ops.currentScope();
        T x = start;
        try (Stepper<T> stepper = newStepper(ops, noise)) {
            for (int step = 0; step < k; step++) {
                control.checkNotCancelled(step, k);
                SamplingStep s = stepAt(step);
                T next;
                try (TensorScope scope = ops.openScope()) {
                    T out = model.predict(s, x, conditioning);
                    if (control.checkFinite()) {
                        NonFiniteOutputException.check(ops, out, s, row -> "image " + row);
                    }
                    next = ops.attach(stepper.step(s, x, out), outer);
                }
                if (x != start) {
                    x.close();
                }
                x = next;
                control.listener().onStep(step, k);
            }
        } catch (RuntimeException e) {
            if (x != start) {
                x.close();
            }
            throw e;
        }
        return x;
    }

    /**
     * Sampler step {@code step} of the loop with the timestep the model is fed: by default the
     * respaced schedule's ({@link SamplingStep#of}); a sampler on another time grid overrides it.
     */
    public SamplingStep stepAt(int step) {
        return SamplingStep.of(schedule, step);
    }

    // ---- helpers for subclasses ---------------------------------------------------------

    /** Latent channels {@code C}, checking that the output has {@code C} or {@code 2C} channels. */
    protected static int latentChannels(Tensor x, Tensor modelOutput) {
        long c = x.shape()[1];
        long out = modelOutput.shape()[1];
        if (out != c && out != 2 * c) {
            throw new IllegalArgumentException("model output has " + out + " channels; expected " + c + " (eps) or "
                    + 2 * c + " (eps and learned variance)");
        }
        return (int) c;
    }

    /** The eps channels of the model output. */
    protected static <T extends Tensor> T eps(TensorOps<T> ops, T x, T modelOutput) {
        int c = latentChannels(x, modelOutput);
        return modelOutput.shape()[1] == c ? modelOutput : ops.sliceChannels(modelOutput, 0, c);
    }

    /** {@code x_0 = sqrt(1/abar_i) x - sqrt(1/abar_i - 1) eps} at respaced index {@code i}, clipped if configured. */
    protected <T extends Tensor> T predictStart(TensorOps<T> ops, int i, T x, T eps) {
        return predictStart(ops, new double[] {schedule.sqrtRecipAlphaCumprod(i)},
                new double[] {schedule.sqrtRecipm1AlphaCumprod(i)}, clipDenoised, x, eps);
    }

    /**
     * {@code x_0 = a x - b eps} row by row ({@code a[r]}, {@code b[r]}; one value: every row),
     * clipped to {@code [-1, 1]} if {@code clip}.
     */
    protected static <T extends Tensor> T predictStart(TensorOps<T> ops, double[] a, double[] b, boolean clip, T x, T eps) {
        double[] minusB = new double[b.length];
        for (int r = 0; r < b.length; r++) {
            minusB[r] = -b[r];
        }
        T x0 = ops.rowLinearCombination(new double[][] {a, minusB}, List.of(x, eps));
        if (!clip) {
            return x0;
        }
        T clipped = ops.clamp(x0, -1, 1);
        x0.close();
        return clipped;
    }
}
