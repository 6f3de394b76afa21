package dev.fora.core.sampling;

import java.util.Objects;

/**
 * What a sampler loop does besides sampling: report steps, stop when asked, check the model's
 * output. Pass one to
 * {@link DiffusionSampler#sample(dev.fora.core.tensor.TensorOps, DenoisingModel, long[], dev.fora.core.model.Conditioning, NoiseSource, LoopControl)};
 * none of it changes the images.
 *
 * @param listener told after each step ({@link StepListener})
 * @param cancel looked at before each step, with the thread's interrupt status: either stops
 *     the loop with a {@link GenerationCancelledException}
 * @param checkFinite whether the model output of each step is checked for NaN and infinity
 *     ({@link NonFiniteOutputException}); one reduction per step
 */
public record LoopControl(StepListener listener, CancelToken cancel, boolean checkFinite) {

    /** No listener, never cancelled (but interruptible), finite check on. */
    public static final LoopControl DEFAULT = new LoopControl(StepListener.NONE, CancelToken.NONE, true);

    /** Validates. */
    public LoopControl {
        Objects.requireNonNull(listener, "listener");
        Objects.requireNonNull(cancel, "cancel");
    }

    /** With this step listener. */
    public LoopControl onStep(StepListener l) {
        return new LoopControl(l, cancel, checkFinite);
    }

    /** With this cancel token. */
    public LoopControl cancelledBy(CancelToken token) {
        return new LoopControl(listener, token, checkFinite);
    }

    /** With the finite check on or off. */
    public LoopControl checkFinite(boolean on) {
        return new LoopControl(listener, cancel, on);
    }

    /** Throws if the loop must stop before {@code step}: the thread was interrupted or the token cancelled. */
    void checkNotCancelled(int step, int totalSteps) {
        if (Thread.currentThread().isInterrupted()) {
            throw new GenerationCancelledException("the thread was interrupted", step, totalSteps);
        }
        cancel.reason().ifPresent(r -> {
            throw new GenerationCancelledException(r, step, totalSteps);
        });
    }
}
