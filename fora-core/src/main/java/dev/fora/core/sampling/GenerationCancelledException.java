package dev.fora.core.sampling;

import java.util.concurrent.CancellationException;

/**
 * A generation stopped between two steps because its thread was interrupted or its
 * {@link CancelToken} was cancelled. Everything the loop held is released before it is thrown.
 * A {@link CancellationException}, hence an {@link IllegalStateException}, like the other ways
 * a task is cancelled in {@code java.util.concurrent}.
 */
public final class GenerationCancelledException extends CancellationException {

    private static final long serialVersionUID = 1L;

    private final int step;
    private final int totalSteps;
    private final String reason;

    /**
     * @param reason why, e.g. "the thread was interrupted"
     * @param step the first step that did not run
     * @param totalSteps the generation's sampler steps
     */
    public GenerationCancelledException(String reason, int step, int totalSteps) {
        super("generation cancelled before step " + step + " of " + totalSteps + ": " + reason);
        this.reason = reason;
        this.step = step;
        this.totalSteps = totalSteps;
    }

    /** The first step that did not run ({@code 0..totalSteps-1}). */
    public int step() {
        return step;
    }

    /** The generation's sampler steps {@code K}. */
    public int totalSteps() {
        return totalSteps;
    }

    /** Why the generation was cancelled. */
    public String reason() {
        return reason;
    }
}
