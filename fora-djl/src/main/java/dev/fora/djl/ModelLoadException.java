package dev.fora.djl;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A model directory could not be loaded. Says which file is at fault ({@link #file()}) and
 * what kind of problem it is ({@link #reason()}); the message adds the details.
 */
public class ModelLoadException extends IOException {

    private static final long serialVersionUID = 1L;

    /** What is wrong with the file (or, for {@link #DEVICE_UNAVAILABLE}, with the host). */
    public enum Reason {
        /** The directory, the manifest or a file it lists does not exist. */
        MISSING_FILE,
        /** A file exists but its size or SHA-256 differs from the manifest, or it is not a loadable TorchScript module. */
        CORRUPT_FILE,
        /** The manifest is of a format or format version this library does not read. */
        UNSUPPORTED_VERSION,
        /** The manifest is not valid JSON, misses a field, or has a value of the wrong type or range. */
        BAD_MANIFEST,
        /** The sizes in the manifest are inconsistent, or the module's outputs do not have the declared shapes. */
        SHAPE_MISMATCH,
        /** The options ask for a device (a GPU) this host does not have; the file names the model directory. */
        DEVICE_UNAVAILABLE
    }

    private final Reason reason;
    private final transient Path file;

    /**
     * @param reason the kind of problem
     * @param file the file at fault
     * @param detail what exactly is wrong
     */
    public ModelLoadException(Reason reason, Path file, String detail) {
        this(reason, file, detail, null);
    }

    /**
     * @param reason the kind of problem
     * @param file the file at fault
     * @param detail what exactly is wrong
     * @param cause the underlying error, or {@code null}
     */
    public ModelLoadException(Reason reason, Path file, String detail, Throwable cause) {
        super(reason + " " + file + ": " + detail, cause);
        this.reason = Objects.requireNonNull(reason, "reason");
        this.file = file;
    }

    /** The kind of problem. */
    public Reason reason() {
        return reason;
    }

    /** The file at fault (the directory itself when it is missing). */
    public Path file() {
        return file;
    }

    /** Why a model file cannot be read, in plain words (no exception class names). */
    static String unreadable(IOException e) {
        if (e instanceof java.nio.file.NoSuchFileException) {
            return "cannot read: no such file";
        }
        if (e instanceof java.nio.file.AccessDeniedException) {
            return "cannot read: permission denied";
        }
        if (e instanceof java.nio.file.FileSystemException f && f.getReason() != null) {
            return "cannot read: " + f.getReason();
        }
        return "cannot read: " + (e.getMessage() == null ? "I/O error" : e.getMessage());
    }
}
