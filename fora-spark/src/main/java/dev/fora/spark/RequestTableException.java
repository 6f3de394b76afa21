package dev.fora.spark;

/**
 * The requests table as a whole cannot be used (unreadable file, unknown or missing columns):
 * the job stops before generating anything. A bad row is not this: it is reported in the
 * results table and the other rows go on.
 */
public final class RequestTableException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** @param message what is wrong and, if possible, what to do */
    public RequestTableException(String message) {
        super(message);
    }

    /**
     * @param message what is wrong
     * @param cause the underlying error
     */
    public RequestTableException(String message, Throwable cause) {
        super(message, cause);
    }
}
