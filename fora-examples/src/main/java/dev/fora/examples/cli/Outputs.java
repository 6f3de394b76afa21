package dev.fora.examples.cli;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import dev.fora.examples.image.ImageBatch;
import dev.fora.examples.image.ImageGrid;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import javax.imageio.ImageIO;
import javax.imageio.stream.ImageOutputStream;
import javax.imageio.stream.MemoryCacheImageOutputStream;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * Output files: checked before any work starts, written atomically (a temporary file in the same
 * directory, then renamed over the target), one-line errors.
 */
final class Outputs {

    static final Gson GSON = new GsonBuilder().setPrettyPrinting().serializeNulls().disableHtmlEscaping().create();

    /** Kernel interfaces and devices, never a place for output files. */
    private static final List<Path> SYSTEM_DIRS = List.of(Path.of("/proc"), Path.of("/sys"), Path.of("/dev"));
    /** The ordinary tmpfs under /dev. */
    private static final Path DEV_SHM = Path.of("/dev/shm");

    /** Temporary files not yet renamed or deleted: the shutdown hook deletes them on Ctrl-C. */
    private static final Set<Path> IN_FLIGHT = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(Outputs::deleteInFlight, "fora-output-cleanup"));
    }

    /** Writes a file's content to a stream (which the caller closes). */
    @FunctionalInterface
    interface Content {
        void writeTo(OutputStream out) throws IOException;
    }

    private Outputs() {
    }

    /**
     * Fails fast (before minutes of sampling) if {@code file} cannot be written: its directory
     * must exist, be writable, accept a new file and not be under /proc, /sys or /dev; the file
     * must not be read-only, a directory, a symbolic link, a device, a FIFO or a socket.
     */
    static void checkWritable(Path file, String option) {
        if (file == null) {
            return;
        }
        refuseToReplace(file, option);
        Path abs = file.toAbsolutePath();
        Path dir = abs.getParent();
        if (dir == null || !Files.isDirectory(dir)) {
            Path existing = dir;
            while (existing != null && !Files.exists(existing)) {
                existing = existing.getParent();
            }
            throw new CliException(ExitCodes.OUTPUT, option + ": cannot write " + file + ": " + (existing == null
                    || Files.isDirectory(existing) ? "directory " + dir + " does not exist"
                    : existing + " is a file, not a directory"));
        }
        Path realDir;
        try {
            realDir = dir.toRealPath();
        } catch (IOException e) {
            throw new CliException(ExitCodes.OUTPUT, option + ": cannot write " + file + ": " + reason(e), e);
        }
        if (SYSTEM_DIRS.stream().anyMatch(realDir::startsWith) && !realDir.startsWith(DEV_SHM)) {
            throw new CliException(ExitCodes.OUTPUT, option + ": cannot write " + file + ": " + realDir
                    + " is a system directory (/proc, /sys, /dev), not a place for output files");
        }
        if (!Files.isWritable(dir) || (Files.exists(abs) && !Files.isWritable(abs))) {
            throw new CliException(ExitCodes.OUTPUT, option + ": cannot write " + file + ": permission denied");
        }
        // Only creating a file is conclusive: access(2) says yes on pseudo and some read-only file systems.
        try {
            discard(newTempFile(abs));
        } catch (IOException e) {
            throw new CliException(ExitCodes.OUTPUT, option + ": cannot write " + file + ": cannot create a file in "
                    + dir + ": " + reason(e), e);
        }
    }

    /**
     * {@link #checkWritable(Path, String)}, and fails if {@code file} is the same file as the value
     * of any other path option of {@code command}: an input would be destroyed, or another output
     * replaced.
     */
    static void checkWritable(Path file, String option, CommandSpec command) {
        checkWritable(file, option);
        if (file == null) {
            return;
        }
        for (OptionSpec other : command.options()) {
            if (Arrays.asList(other.names()).contains(option)) {
                continue;
            }
            Object value = other.getValue();
            for (Object v : value instanceof Collection<?> c ? c : Collections.singletonList(value)) {
                if (v instanceof Path p) {
                    checkDistinct(file, option, p, other.longestName());
                }
            }
        }
    }

    /** Fails if two options name the same file: writing one would replace the other. */
    static void checkDistinct(Path a, String optionA, Path b, String optionB) {
        if (a == null || b == null) {
            return;
        }
        if (canonical(a).equals(canonical(b)) || isSameFile(a, b)) {
            throw new CliException(ExitCodes.OUTPUT, optionA + " and " + optionB + " are the same file " + a
                    + "; give two different files");
        }
    }

    /** Writes a PNG grid. */
    static void writeGrid(ImageGrid grid, List<ImageBatch> rows, List<String> labels, Path file, String option) {
        write(file, option, out -> {
            // In memory: ImageIO's default stream cache is a file of its own in java.io.tmpdir.
            try (ImageOutputStream image = new MemoryCacheImageOutputStream(out)) {
                if (!ImageIO.write(grid.render(rows, labels), "png", image)) {
                    throw new IOException("no PNG writer available");
                }
            }
        });
    }

    /** Writes an object as pretty JSON (UTF-8, trailing newline). */
    static void writeJson(Object value, Path file, String option) {
        write(file, option, out -> {
            Writer w = new OutputStreamWriter(out, StandardCharsets.UTF_8);
            GSON.toJson(value, w);
            w.write('\n');
            w.flush();
        });
    }

    /**
     * Writes {@code file} atomically: readers, a crash or Ctrl-C see the old file or the complete
     * new one, never a partial one, and no temporary file is left behind.
     */
    static void write(Path file, String option, Content content) {
        refuseToReplace(file, option); // again: the target may have changed while sampling
        Path abs = file.toAbsolutePath();
        Path tmp = null;
        try {
            tmp = newTempFile(abs);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE);
                    OutputStream out = new BufferedOutputStream(Channels.newOutputStream(ch))) {
                content.writeTo(out);
                out.flush();
                ch.force(true); // on disk before the rename, so a power loss cannot leave an empty file
            }
            if (Files.exists(abs)) {
                keepPermissions(abs, tmp);
            }
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException | RuntimeException e) {
            throw new CliException(ExitCodes.OUTPUT, option + ": cannot write " + file + ": "
                    + (e instanceof IOException io ? reason(io) : e.getMessage()), e);
        } finally {
            if (tmp != null) {
                discard(tmp);
            }
        }
    }

    /** A finite double, or {@code null} (JSON has no infinity or NaN). */
    static Double finite(double v) {
        return Double.isFinite(v) ? v : null;
    }

    /** Deletes the temporary files still being written (the shutdown hook; package-private for tests). */
    static void deleteInFlight() {
        for (Path tmp : IN_FLIGHT) {
            discard(tmp);
        }
    }

    /** Refuses targets that renaming a new file over would destroy or that are not files at all. */
    private static void refuseToReplace(Path file, String option) {
        if (file.toString().isEmpty()) {
            throw new CliException(ExitCodes.USAGE, option + ": the file name is empty");
        }
        Path abs = file.toAbsolutePath();
        if (Files.isSymbolicLink(abs)) {
            throw new CliException(ExitCodes.OUTPUT, option + ": " + file
                    + " is a symbolic link; refusing to replace it, give the file it points to");
        }
        if (Files.isDirectory(abs)) {
            throw new CliException(ExitCodes.OUTPUT, option + ": " + file + " is a directory; give a file name");
        }
        if (Files.exists(abs, LinkOption.NOFOLLOW_LINKS) && !Files.isRegularFile(abs, LinkOption.NOFOLLOW_LINKS)) {
            throw new CliException(ExitCodes.OUTPUT, option + ": " + file
                    + " is a device, FIFO or socket, not a regular file; refusing to replace it");
        }
    }

    /**
     * A new empty file beside {@code target}, hidden and created exclusively (never a user's
     * file). Not {@link Files#createTempFile}: its mode 0600 would end up on the output.
     */
    private static Path newTempFile(Path target) throws IOException {
        String name = "." + target.getFileName() + "." + Long.toUnsignedString(ThreadLocalRandom.current().nextLong(), 36)
                + ".tmp";
        Path tmp = Files.createFile(target.resolveSibling(name));
        IN_FLIGHT.add(tmp);
        return tmp;
    }

    private static void discard(Path tmp) {
        try {
            Files.deleteIfExists(tmp);
        } catch (IOException e) {
            // Nothing more to do: the write itself already succeeded or failed.
        }
        IN_FLIGHT.remove(tmp);
    }

    /** Gives the new file the mode of the one it replaces, as writing in place did. */
    private static void keepPermissions(Path from, Path to) throws IOException {
        try {
            Files.setPosixFilePermissions(to, Files.getPosixFilePermissions(from));
        } catch (UnsupportedOperationException e) {
            // Not a POSIX file system: the new file keeps the default mode.
        }
    }

    /** The path with its directory resolved (symbolic links, {@code ..}) where it exists. */
    private static Path canonical(Path p) {
        Path abs = p.toAbsolutePath();
        Path dir = abs.getParent();
        if (dir == null) {
            return abs;
        }
        try {
            return dir.toRealPath().resolve(abs.getFileName());
        } catch (IOException e) {
            return abs.normalize();
        }
    }

    private static boolean isSameFile(Path a, Path b) {
        try {
            return Files.exists(a) && Files.exists(b) && Files.isSameFile(a, b);
        } catch (IOException e) {
            return false;
        }
    }

    /** What went wrong with a file, in plain words (no exception class names). */
    static String reason(IOException e) {
        if (e instanceof NoSuchFileException) {
            return "no such file or directory";
        }
        if (e instanceof AccessDeniedException) {
            return "permission denied";
        }
        if (e instanceof FileSystemException f) {
            return f.getReason() != null ? f.getReason() : "file system error";
        }
        return e.getMessage() == null ? "I/O error" : e.getMessage();
    }

}
