package dev.fora.examples.cli;

/** Exit codes of the {@code fora} command. */
public final class ExitCodes {

    /** Success. */
    public static final int OK = 0;
    /** Unexpected internal error (a bug: run with {@code --verbose} and report the stack trace). */
    public static final int INTERNAL = 1;
    /** Invalid usage: unknown option, bad policy spec, label out of range, bad number. */
    public static final int USAGE = 2;
    /** The model directory is missing, incomplete, corrupt or of an unsupported format. */
    public static final int MODEL = 3;
    /** An output file cannot be written. */
    public static final int OUTPUT = 4;
    /**
     * The model produced NaN or infinity (broken weights or inputs); without the check the
     * images would come out black.
     */
    public static final int NON_FINITE = 5;
    /**
     * A generation was cancelled (Ctrl-C): 128 + SIGINT, as shells report it. When a signal ends
     * the JVM, the JVM exits with 128 + the signal's number itself (130 for SIGINT, 143 for SIGTERM).
     */
    public static final int CANCELLED = 130;

    private ExitCodes() {
    }
}
