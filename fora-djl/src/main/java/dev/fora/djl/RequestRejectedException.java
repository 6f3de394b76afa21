package dev.fora.djl;

/**
 * A {@link GenerationService} did not take a request: its queue is full, the request can never
 * fit the service's limits, or the service is closed. Nothing of the request ran.
 */
public final class RequestRejectedException extends IllegalStateException {

    private static final long serialVersionUID = 1L;

    /** Why a request was rejected. */
    public enum Reason {
        /** The queue is full; retrying later may succeed. */
        QUEUE_FULL,
        /** The request needs more rows per pass, or more cache, than the service ever has. */
        TOO_LARGE,
        /** The service is closed or closing. */
        CLOSED
    }

    private final Reason reason;

    RequestRejectedException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
