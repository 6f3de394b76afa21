package dev.fora.examples.cli;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import dev.fora.examples.image.ImageBatch;
import dev.fora.examples.image.ImageGrid;
import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Output files: checked before any work starts, written atomically-ish, one-line errors. */
final class Outputs {

    static final Gson GSON = new GsonBuilder().setPrettyPrinting().serializeNulls().disableHtmlEscaping().create();

    private Outputs() {
    }

    /**
     * Fails fast (before minutes of sampling) if {@code file} cannot be written: its directory
     * must exist and be writable, and the file must not be a directory or read-only.
     */
    static void checkWritable(Path file, String option) {
        if (file == null) {
            return;
        }
        Path abs = file.toAbsolutePath();
        Path dir = abs.getParent();
        if (Files.isDirectory(abs)) {
            throw new CliException(ExitCodes.OUTPUT, option + ": " + file + " is a directory; give a file name");
        }
        if (dir == null || !Files.isDirectory(dir)) {
            throw new CliException(ExitCodes.OUTPUT, option + ": cannot write " + file + ": directory " + dir
                    + " does not exist");
        }
        if (!Files.isWritable(dir) || (Files.exists(abs) && !Files.isWritable(abs))) {
            throw new CliException(ExitCodes.OUTPUT, option + ": cannot write " + file + ": permission denied");
        }
    }

    /** Writes a PNG grid. */
    static void writeGrid(ImageGrid grid, List<ImageBatch> rows, List<String> labels, Path file, String option) {
        try {
            grid.write(rows, labels, file);
        } catch (IOException | RuntimeException e) {
            throw new CliException(ExitCodes.OUTPUT, option + ": cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** Writes an object as pretty JSON (UTF-8, trailing newline). */
    static void writeJson(Object value, Path file, String option) {
        try (Writer w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            GSON.toJson(value, w);
            w.write('\n');
        } catch (IOException | RuntimeException e) {
            throw new CliException(ExitCodes.OUTPUT, option + ": cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** A finite double, or {@code null} (JSON has no infinity or NaN). */
    static Double finite(double v) {
        return Double.isFinite(v) ? v : null;
    }
}
