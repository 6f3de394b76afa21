package dev.fora.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.examples.Main;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's main job ({@code compare --all-classes --policy fora:2,fora:3,fora:5}) as the
 * first command of a new JVM: no measured speed-up may exceed its FLOP bound (issue 26 item 15:
 * 5.53x against a bound of 2.78x). A cached step still costs
 * something, so a measured speed-up at or below the bound is the physics; the margin is for
 * timing noise only. The uncached baseline is the whole-model forward: the staged path without a
 * cache computed and discarded the features a cache keeps, and was 1.3 to 1.6 times slower in
 * bench on this host.
 */
class CompareColdStartTest {

    /**
     * Timing noise allowed on a ratio of two wall times, each of one run of 10 images x 50 steps
     * (the README's main job with its defaults, as a newcomer runs it: one timed run per path).
     * Runs of seconds average out the bursts of a shared machine that make runs of a fraction of a
     * second unusable. On a 2-core AMD EPYC at load 14 to 20 (many builds at once), three runs gave
     * 0.32 to 0.89 of the bound; the code before the fix gave 5.21x against 2.78x (1.87 times).
     */
    static final double NOISE = 0.25;

    @TempDir
    Path tmp;

    @Test
    void theFirstCompareOfAJvmPrintsNoSpeedupAboveItsBound() throws Exception {
        Path json = tmp.resolve("c.json");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process process = new ProcessBuilder(java.toString(), "-Xmx512m", "-Dai.djl.offline=true",
                "-Dai.djl.pytorch.num_threads=1", "-Dai.djl.pytorch.num_interop_threads=1", "-Djava.awt.headless=true",
                "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "compare", "--model", TestModels.model().toAbsolutePath().toString(), "--all-classes",
                "--policy", "fora:2,fora:3,fora:5", "--quiet", "--out", tmp.resolve("c.png").toString(), "--json",
                json.toString()).redirectErrorStream(true).redirectOutput(tmp.resolve("log.txt").toFile()).start();
        try {
            assertThat(process.waitFor(10, TimeUnit.MINUTES)).as("compare finishes").isTrue();
        } finally {
            process.destroyForcibly();
        }
        String log = Files.readString(tmp.resolve("log.txt"));
        assertThat(process.exitValue()).as(log).isZero();
        int rows = 0;
        for (JsonElement e : JsonParser.parseString(Files.readString(json)).getAsJsonArray()) {
            JsonObject o = e.getAsJsonObject();
            double bound = o.get("flop_speedup").getAsDouble();
            assertThat(o.get("measured_speedup").getAsDouble()).as("%s: %s", o.get("policy").getAsString(), log)
                    .isLessThanOrEqualTo(bound * (1 + NOISE));
            rows++;
        }
        assertThat(rows).isEqualTo(4);
    }
}
