package dev.fora.examples.cli;

/** Range checks of option values that need no model, as usage errors. */
final class Checks {

    private Checks() {
    }

    /** A usage error {@code "<option> must be >= <min>, got <value>"} unless {@code value >= min}. */
    static void atLeast(String option, long value, long min) {
        if (value < min) {
            throw new CliException(ExitCodes.USAGE, option + " must be >= " + min + ", got " + value);
        }
    }
}
