package dev.fora.core.sampling;

import java.util.Objects;
import java.util.Optional;

/**
 * Asks running generations to stop. The sampler loop looks at its token before every step
 * and, once the token is cancelled, throws a {@link GenerationCancelledException} instead of
 * running the step, after releasing its latents. Thread-safe: cancel from any thread; the
 * generation stops when its current step ends (a model call is never cut short).
 *
 * <p>One token may be shared by many generations (cancel them all at once). A
 * {@link #child()} is cancelled with its parent or on its own, so a library can add its own
 * reasons to stop (e.g. its pipeline closing) without cancelling the caller's token.
 */
public final class CancelToken {

    /** A token that is never cancelled; {@link #cancel()} on it is refused. */
    public static final CancelToken NONE = new CancelToken(null, false);

    private final CancelToken parent;
    private final boolean cancellable;
    private volatile String reason;

    /** A new token, not cancelled. */
    public CancelToken() {
        this(null, true);
    }

    private CancelToken(CancelToken parent, boolean cancellable) {
        this.parent = parent;
        this.cancellable = cancellable;
    }

    /** A new token that is cancelled when this one is, or when it is cancelled itself. */
    public CancelToken child() {
        return new CancelToken(this, true);
    }

    /** Cancels with the reason "cancelled through its CancelToken". */
    public void cancel() {
        cancel("cancelled through its CancelToken");
    }

    /**
     * Cancels; the first reason given is the one reported. Idempotent.
     *
     * @param reason why, for the {@link GenerationCancelledException}'s message
     * @throws UnsupportedOperationException on {@link #NONE}
     */
    public void cancel(String reason) {
        Objects.requireNonNull(reason, "reason");
        if (!cancellable) {
            throw new UnsupportedOperationException("CancelToken.NONE cannot be cancelled; use new CancelToken()");
        }
        if (this.reason == null) {
            this.reason = reason;
        }
    }

    /** Whether this token or a parent has been cancelled. */
    public boolean isCancelled() {
        return reason().isPresent();
    }

    /** Why the token was cancelled (its own reason first, else its parent's), or empty. */
    public Optional<String> reason() {
        for (CancelToken t = this; t != null; t = t.parent) {
            String r = t.reason;
            if (r != null) {
                return Optional.of(r);
            }
        }
        return Optional.empty();
    }

    @Override
    public String toString() {
        return "CancelToken[" + reason().map(r -> "cancelled: " + r).orElse(this == NONE ? "never cancelled" : "running")
                + "]";
    }
}
