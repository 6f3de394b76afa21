package dev.fora.spark;

/**
 * One request row cannot be generated (a bad value, a label the model does not have, a policy
 * spec that does not parse): the row is reported with status {@code error} and this message,
 * and the job goes on with the other rows.
 */
public final class RequestException extends Exception {

    private static final long serialVersionUID = 1L;

    /** @param message what is wrong with the row */
    public RequestException(String message) {
        super(message);
    }
}
