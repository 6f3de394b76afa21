package dev.fora.core.cache;

import java.util.Objects;

/**
 * A cache schedule ({@link CacheSchedule}, {@code schedule:FILE}) that cannot serve the
 * generation it was asked for, or a schedule file that cannot be read. {@link #reason()} says
 * which rule broke, so callers can tell a wrong model from a broken file.
 */
public final class ScheduleException extends IllegalArgumentException {

    private static final long serialVersionUID = 1L;

    /** Which rule the schedule broke. */
    public enum Reason {
        /** The file is not a schedule: not JSON, a missing or mistyped field, an invalid step list. */
        MALFORMED,
        /** The schedule was tuned for another model (digest). */
        WRONG_MODEL,
        /** The schedule was tuned for another sampler. */
        WRONG_SAMPLER,
        /** The schedule was tuned for another step count. */
        WRONG_STEPS,
        /** The schedule names a block the model does not have. */
        UNKNOWN_BLOCK,
        /** The schedule names a branch the model's blocks do not have. */
        UNKNOWN_BRANCH,
        /** The schedule leaves out a block or branch the model has. */
        INCOMPLETE
    }

    private final Reason reason;

    /**
     * @param reason which rule broke
     * @param message what is wrong, naming the value at fault
     */
    public ScheduleException(Reason reason, String message) {
        super(message);
        this.reason = Objects.requireNonNull(reason, "reason");
    }

    /**
     * @param reason which rule broke
     * @param message what is wrong
     * @param cause the underlying error (a JSON syntax error, an I/O error)
     */
    public ScheduleException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = Objects.requireNonNull(reason, "reason");
    }

    /** Which rule broke. */
    public Reason reason() {
        return reason;
    }
}
