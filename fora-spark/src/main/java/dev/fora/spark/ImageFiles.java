package dev.fora.spark;

import dev.fora.djl.Images;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.UUID;

/** The job's image files. */
final class ImageFiles {

    private ImageFiles() {
    }

    /**
     * Writes one {@code [C, H, W]} image as a PNG with the library's pixel mapping and writer
     * ({@link Images#writePng}), atomically: into a hidden temporary file beside {@code file},
     * synced, then renamed over it. Readers, and a retried or speculative attempt of the same task
     * writing the same file, see the old file or a whole new one, never a partial one.
     *
     * @throws UncheckedIOException if the file cannot be written (the task fails and Spark retries it)
     */
    static void writePng(float[] chw, int channels, int height, int width, int scale, Path file) {
        Path tmp = file.resolveSibling("." + file.getFileName() + "." + UUID.randomUUID() + ".tmp");
        try {
            Images.writePng(chw, channels, height, width, scale, tmp);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                ch.force(true); // on disk before the rename, so a crash cannot leave an empty file under the final name
            }
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        } finally {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException e) {
                // Only a leftover of a write that already failed; its error is the one that matters.
            }
        }
    }
}
