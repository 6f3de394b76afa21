package dev.fora.examples.cli;

/**
 * An error the user can fix (bad argument, unreadable model, unwritable output): printed as
 * one line, without a stack trace unless {@code --verbose}, and mapped to an exit code.
 */
public final class CliException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final int exitCode;

    /**
     * @param exitCode one of the {@link ExitCodes}
     * @param message one line saying what is wrong and, if possible, what to do
     */
    public CliException(int exitCode, String message) {
        this(exitCode, message, null);
    }

    /**
     * @param exitCode one of the {@link ExitCodes}
     * @param message one line saying what is wrong
     * @param cause the underlying error (shown with {@code --verbose})
     */
    public CliException(int exitCode, String message, Throwable cause) {
        super(message, cause);
        this.exitCode = exitCode;
    }

    /** The process exit code. */
    public int exitCode() {
        return exitCode;
    }
}
