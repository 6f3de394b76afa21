package dev.fora.spark;

/** The output directory cannot be used: the job stops before generating anything. */
public final class OutputException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /**
     * @param message what is wrong and, if possible, what to do
     * @param cause the underlying error, or {@code null}
     */
    public OutputException(String message, Throwable cause) {
        super(message, cause);
    }
}
