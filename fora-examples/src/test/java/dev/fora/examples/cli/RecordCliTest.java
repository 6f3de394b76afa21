package dev.fora.examples.cli;

import static dev.fora.examples.cli.CommandsTest.args;
import static dev.fora.examples.cli.CommandsTest.ok;
import static dev.fora.examples.cli.CommandsTest.run;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.model.ConditioningSpec;
import dev.fora.core.recording.Recording;
import dev.fora.examples.Main;
import dev.fora.examples.cli.CommandsTest.Result;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code fora record} and {@code fora calibrate} take what {@code generate} takes and run what it
 * runs (issue 26 items 1, 5 and 6): Ctrl-C stops a recording and writes nothing; the PixArt-α,
 * {@code --sampler dpms} and {@code --dtype bf16} work; {@code --guided-channels} and
 * {@code --text-embeddings} are checked, and applied.
 */
class RecordCliTest {

    @TempDir
    Path tmp;

    private static void usageError(Result r, String... fragments) {
        assertThat(r.exitCode()).as(r.err()).isEqualTo(ExitCodes.USAGE);
        String err = r.err().strip();
        assertThat(err.lines().count()).as(err).isEqualTo(1);
        assertThat(err).contains(fragments).doesNotContain("\tat ");
    }

    @Test
    void ctrlCStopsARecordingAndLeavesTheOldFileAlone() throws Exception {
        Path out = tmp.resolve("r.frec");
        byte[] old = "an earlier recording".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        Files.write(out, old);
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process process = new ProcessBuilder(java.toString(), "-Xmx2g", "-Dai.djl.offline=true",
                "-Dai.djl.pytorch.num_threads=1", "-Dai.djl.pytorch.num_interop_threads=1", "-Djava.awt.headless=true",
                "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "record", "--model", TestModels.model().toAbsolutePath().toString(), "--labels", "0,1", "--steps", "1000",
                "--out", out.toString(), "--verbose").redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        StringBuffer err = new StringBuffer();
        Thread reader = CtrlCTest.drain(process.getErrorStream(), err);
        try {
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
            while (!err.toString().contains("loaded dit-patterns") && process.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertThat(err.toString()).as("the model loaded").contains("loaded dit-patterns");
            Thread.sleep(500); // recording: 2 images x 1000 guided steps take several seconds
            process.toHandle().destroy(); // SIGTERM, the same shutdown hook as Ctrl-C
            assertThat(process.waitFor(30, TimeUnit.SECONDS)).as("the JVM exits; stderr:%n%s", err).isTrue();
        } finally {
            process.destroyForcibly();
        }
        reader.join(5_000);
        assertThat(process.exitValue()).as(err.toString()).isEqualTo(128 + 15);
        assertThat(err.toString()).contains("fora: error: generation cancelled before step ").doesNotContain("wrote");
        assertThat(Files.readAllBytes(out)).as("the earlier recording").isEqualTo(old);
        try (var files = Files.list(tmp)) {
            assertThat(files.toList()).as("files in the directory").containsExactly(out);
        }
    }

    @Test
    void recordAndCalibrateRunOnThePixArt() throws Exception {
        Path file = tmp.resolve("p.frec");
        Result r = ok(args("record", "--model", FamiliesCliTest.PIXART, "--text-embeddings", FamiliesCliTest.PROMPTS,
                "--sampler", "dpms", "--steps", 4, "--cfg", 4.5, "--out", file, "--quiet"));
        assertThat(r.out()).contains("images            2 (prompts [0, 1]), dpms 4 steps");
        Recording rec = Recording.read(file);
        assertThat(rec.config().conditioning()).isInstanceOf(ConditioningSpec.Text.class);
        assertThat(rec.steps()).isEqualTo(4);
        assertThat(rec.rows()).isEqualTo(4);
        Result c = ok(args("calibrate", "--model", FamiliesCliTest.PIXART, "--text-embeddings", FamiliesCliTest.PROMPTS,
                "--policy", "fbcache", "--target-speedup", 1.5, "--steps", 8, "--images", 3, "--quiet"));
        assertThat(c.out()).contains("spec              fbcache:");
    }

    @Test
    void recordAndCalibrateTakeDpmsAndBf16() throws Exception {
        Path model = TestModels.model();
        Path dpms = tmp.resolve("dpms.frec");
        ok(args("record", "--model", model, "--labels", "2", "--sampler", "dpms", "--steps", 5, "--out", dpms, "--quiet"));
        assertThat(Recording.read(dpms).metadata()).containsEntry("sampler", "dpms");
        Path bf16 = tmp.resolve("bf16.frec");
        ok(args("record", "--model", model, "--labels", "2", "--dtype", "bf16", "--steps", 5, "--out", bf16, "--quiet"));
        assertThat(Recording.read(bf16).steps()).isEqualTo(5);
        ok(args("calibrate", "--model", model, "--policy", "fbcache", "--target-speedup", 1.5, "--steps", 8, "--images", 2,
                "--sampler", "dpms", "--quiet"));
        ok(args("calibrate", "--model", model, "--policy", "fbcache", "--target-speedup", 1.5, "--steps", 8, "--images", 2,
                "--dtype", "bf16", "--quiet"));
    }

    @Test
    void guidedChannelsAndTextEmbeddingsAreCheckedAndApplied() throws Exception {
        Path model = TestModels.model();
        for (String bad : new String[] {"7", "-1", "0"}) {
            usageError(run(args("record", "--model", model, "--labels", "1", "--steps", 2, "--guided-channels", bad,
                    "--out", tmp.resolve("x.frec"), "--quiet")), "--guided-channels must be from 1 to the model's");
        }
        usageError(run(args("calibrate", "--model", model, "--policy", "teacache", "--target-speedup", 2, "--steps", 4,
                "--guided-channels", "-2", "--quiet")), "--guided-channels must be from 1 to the model's");
        usageError(run(args("record", "--model", model, "--text-embeddings", FamiliesCliTest.PROMPTS, "--steps", 2,
                "--out", tmp.resolve("y.frec"), "--quiet")), "--text-embeddings", "conditioned on class labels");
        assertThat(tmp.resolve("x.frec")).doesNotExist();
        assertThat(tmp.resolve("y.frec")).doesNotExist();

        Path all = tmp.resolve("all.frec");
        Path one = tmp.resolve("one.frec");
        ok(args("record", "--model", model, "--labels", "1", "--steps", 4, "--out", all, "--quiet"));
        ok(args("record", "--model", model, "--labels", "1", "--steps", 4, "--guided-channels", 1, "--out", one, "--quiet"));
        Recording a = Recording.read(all);
        Recording b = Recording.read(one);
        assertThat(a.tokens(0)).as("the same noise at step 0").isEqualTo(b.tokens(0));
        assertThat(Arrays.equals(a.tokens(3), b.tokens(3))).as("guiding 1 channel changes the trajectory").isFalse();
    }

    @Test
    void theDeviceIsCpuByDefaultAndAMissingGpuIsAUsageError() throws Exception {
        Path model = TestModels.model();
        ok(args("generate", "--model", model, "--labels", "1", "--steps", 2, "--device", "cpu", "--out",
                tmp.resolve("cpu.png"), "--quiet"));
        usageError(run(args("generate", "--model", model, "--labels", "1", "--steps", 2, "--device", "tpu", "--out",
                tmp.resolve("tpu.png"), "--quiet")), "--device must be cpu, gpu or gpu:N");
        if (ai.djl.engine.Engine.getEngine("PyTorch").getGpuCount() == 0) {
            usageError(run(args("generate", "--model", model, "--labels", "1", "--steps", 2, "--device", "gpu:0", "--out",
                    tmp.resolve("gpu.png"), "--quiet")), "--device gpu:0", "no GPU");
            assertThat(tmp.resolve("gpu.png")).doesNotExist();
        }
    }
}
