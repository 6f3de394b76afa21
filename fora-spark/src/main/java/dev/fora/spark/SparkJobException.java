package dev.fora.spark;

/**
 * The Spark job failed for a reason other than the model: a task kept failing (more often than
 * {@code spark.task.maxFailures} allows, e.g. an image could not be written) or Spark itself
 * failed. The message is Spark's first line; the cause has the rest.
 */
public final class SparkJobException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /**
     * @param message what failed
     * @param cause Spark's exception
     */
    public SparkJobException(String message, Throwable cause) {
        super(message, cause);
    }
}
