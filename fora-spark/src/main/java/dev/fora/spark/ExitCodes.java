package dev.fora.spark;

/**
 * Exit codes of the {@code fora-spark} job. Where a cause is the same as one of the {@code fora}
 * command's, so is the number (usage 2, model 3, output 4), so that scripts treat both alike.
 */
final class ExitCodes {

    /** The job ran; rows that failed are in the results table. */
    static final int OK = 0;
    /** The Spark job failed, or an unexpected internal error. */
    static final int INTERNAL = 1;
    /** Invalid usage, or a requests table that cannot be read. */
    static final int USAGE = 2;
    /** The model cannot be loaded. */
    static final int MODEL = 3;
    /** The output directory cannot be used. */
    static final int OUTPUT = 4;

    private ExitCodes() {
    }
}
