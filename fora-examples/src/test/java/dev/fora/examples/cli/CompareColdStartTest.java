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
 * The README's main job as the first command of a new JVM: no measured speed-up may exceed its
 * FLOP bound (issue 26 item 15: 5.53x against a bound of 2.78x). A cached step still costs
 * something, so a measured speed-up at or below the bound is the physics; the margin is for
 * timing noise only. The uncached baseline is the whole-model forward: the staged path without a
 * cache computed and discarded the features a cache keeps, and was 1.3 to 1.6 times slower in bench on this host.
 */
class CompareColdStartTest {

    /**
     * Timing noise allowed on a ratio of two wall times, each of one run (the default
     * {@code --repeats 1}, as a newcomer runs it). On a 2-core AMD EPYC at load ~20 (many builds
     * at once), runs of this command gave 0.4 to 0.9 of the bound; before the fix, 2 times the
     * bound.
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
                "compare", "--model", TestModels.model().toAbsolutePath().toString(), "--labels", "0,1,2,3", "--steps", "20",
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
