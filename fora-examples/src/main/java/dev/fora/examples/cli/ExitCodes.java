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

    private ExitCodes() {
    }
}
