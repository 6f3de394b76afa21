package dev.fora.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.examples.Main;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Ctrl-C in the middle of a generation, in a JVM of its own: the shutdown hook cancels the
 * generation, which stops at its next step and releases its memory; the command reports it in
 * one line and leaves no output file, finished or partial. Sent as SIGTERM, which runs the same
 * shutdown hook: a shell without job control (as CI may run this) starts its background
 * processes with SIGINT ignored.
 */
class CtrlCTest {

    @TempDir
    Path tmp;

    @Test
    void ctrlCOrSigtermCancelsTheRunningGenerationAndLeavesNoFile() throws Exception {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process process = new ProcessBuilder(java.toString(), "-Xmx512m", "-Dai.djl.offline=true",
                "-Dai.djl.pytorch.num_threads=1", "-Dai.djl.pytorch.num_interop_threads=1", "-Djava.awt.headless=true",
                "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "generate", "--model", TestModels.model().toAbsolutePath().toString(), "--labels", "0", "--per-class", "8",
                "--steps", "1000", "--out", tmp.resolve("g.png").toString(), "--json", tmp.resolve("g.json").toString(),
                "--verbose").redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        StringBuffer err = new StringBuffer();
        Thread reader = drain(process.getErrorStream(), err);
        try {
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
            while (!err.toString().contains("loaded dit-patterns") && process.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertThat(err.toString()).as("the model loaded").contains("loaded dit-patterns");
            Thread.sleep(500); // generating: 8 images x 1000 steps take several seconds
            process.toHandle().destroy(); // SIGTERM (Process.destroy would also close our end of stderr)
            assertThat(process.waitFor(30, TimeUnit.SECONDS)).as("the JVM exits; stderr:%n%s", err).isTrue();
        } finally {
            process.destroyForcibly();
        }
        reader.join(5_000);
        assertThat(process.exitValue()).as(err.toString()).isEqualTo(128 + 15); // as for any JVM ended by SIGTERM
        assertThat(err.toString()).contains("fora: error: generation cancelled before step ",
                "interrupted (Ctrl-C or a termination signal)");
        try (Stream<Path> files = Files.list(tmp)) {
            assertThat(files.toList()).as("files left behind").isEqualTo(List.of());
        }
    }

    static Thread drain(InputStream in, StringBuffer into) {
        Thread t = new Thread(() -> {
            byte[] buf = new byte[4096];
            try {
                for (int n; (n = in.read(buf)) > 0; ) {
                    into.append(new String(buf, 0, n, StandardCharsets.UTF_8));
                }
            } catch (IOException e) {
                into.append(e);
            }
        });
        t.start();
        return t;
    }
}
