package dev.fora.examples.cli;

import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Input files: one-line usage errors in plain words when they cannot be read. */
final class Inputs {

    private Inputs() {
    }

    /**
     * Fails unless {@code file} is a readable regular file, so that the errors left to a reader
     * are about the file's content.
     */
    static void checkReadable(Path file, String option) {
        if (file.toString().isEmpty()) {
            throw new CliException(ExitCodes.USAGE, option + ": the file name is empty");
        }
        String why = problem(file);
        if (why != null) {
            throw new CliException(ExitCodes.USAGE, option + ": cannot read " + file + ": " + why);
        }
    }

    /** Why {@code file} cannot be read as a file, in plain words, or null if it can be. */
    static String problem(Path file) {
        return !Files.exists(file) ? "no such file" : Files.isDirectory(file) ? "it is a directory"
                : !Files.isRegularFile(file) ? "not a regular file" : !Files.isReadable(file) ? "permission denied" : null;
    }

    /**
     * The usage error for an {@link IOException} while reading {@code file}: the file system's
     * reason in plain words, or the reader's own message about the content.
     */
    static CliException unreadable(String option, Path file, IOException e) {
        String message = e instanceof FileSystemException || e.getMessage() == null
                || !e.getMessage().contains(file.toString()) ? "cannot read " + file + ": " + Outputs.reason(e) : e.getMessage();
        return new CliException(ExitCodes.USAGE, option + ": " + message, e);
    }
}
