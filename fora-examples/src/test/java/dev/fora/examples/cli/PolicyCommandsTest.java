package dev.fora.examples.cli;

import static dev.fora.examples.cli.CommandsTest.args;
import static dev.fora.examples.cli.CommandsTest.ok;
import static dev.fora.examples.cli.CommandsTest.run;

import dev.fora.examples.cli.CommandsTest.Result;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.core.recording.Recording;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The built-in policies through the CLI, and record, replay, calibrate and compare --plot, on the shipped model. */
class PolicyCommandsTest {

    @TempDir
    Path tmp;

    /** Every built-in, one setting, as compare and generate take them. */
    static final List<String> BUILT_INS = List.of("fora:2", "taylorseer:2,2", "hicache:2", "fbcache:0.3", "teacache:0.2",
            "magcache:0.2,2", "deltadit:2,3", "pab:attn=2,mlp=3", "warmup:2,cooldown:1,taylorseer:3,3");

    @Test
    void everyBuiltInRunsPerImageThroughCompare() throws Exception {
        Path model = TestModels.model();
        Path json = tmp.resolve("c.json");
        Result r = ok(args("compare", "--model", model, "--labels", "0,4,7", "--steps", 8, "--warmup", 0, "--quiet",
                "--batch", 3, "--out", tmp.resolve("c.png"), "--json", json, "--policy", String.join(",", BUILT_INS)));
        for (String spec : BUILT_INS) {
            assertThat(r.out()).contains("| " + spec + " ");
        }
        JsonArray a = JsonParser.parseString(Files.readString(json)).getAsJsonArray();
        assertThat(a).hasSize(BUILT_INS.size() + 1);
        for (int i = 1; i < a.size(); i++) {
            JsonObject o = a.get(i).getAsJsonObject();
            assertThat(o.get("compute_fraction").getAsDouble()).as(o.get("policy").getAsString()).isLessThan(1.0);
            assertThat(o.get("psnr_db").getAsDouble()).as(o.get("policy").getAsString()).isGreaterThan(10);
        }
    }

    /** Results of an adaptive policy: the images of a batch of 3 equal the same images generated one at a time. */
    @Test
    void adaptivePoliciesGiveEveryImageTheSameResultInAnyBatch() throws Exception {
        Path model = TestModels.model();
        for (String policy : List.of("fbcache:0.3", "teacache:0.2", "magcache:0.2,2")) {
            Path together = tmp.resolve("t.json");
            Path alone = tmp.resolve("a.json");
            ok(args("compare", "--model", model, "--labels", "2,5,8", "--steps", 8, "--warmup", 0, "--quiet", "--batch", 3,
                    "--out", tmp.resolve("t.png"), "--json", together, "--policy", policy));
            ok(args("compare", "--model", model, "--labels", "2,5,8", "--steps", 8, "--warmup", 0, "--quiet", "--batch", 1,
                    "--out", tmp.resolve("a.png"), "--json", alone, "--policy", policy));
            JsonObject t = JsonParser.parseString(Files.readString(together)).getAsJsonArray().get(1).getAsJsonObject();
            JsonObject a = JsonParser.parseString(Files.readString(alone)).getAsJsonArray().get(1).getAsJsonObject();
            assertThat(t.get("compute_fraction").getAsDouble()).as(policy).isEqualTo(a.get("compute_fraction").getAsDouble());
            assertThat(t.get("psnr_db").getAsDouble()).as(policy).isCloseTo(a.get("psnr_db").getAsDouble(), within(1e-3));
        }
    }

    @Test
    void recordWritesARecordingThatReplayRunsPoliciesAgainst() throws Exception {
        Path model = TestModels.model();
        Path file = tmp.resolve("r.frec");
        Result rec = ok(args("record", "--model", model, "--labels", "1,6", "--steps", 10, "--out", file, "--quiet"));
        assertThat(rec.out()).contains("recorded          10 steps x 4 rows", "6 modulated inputs");
        Recording r = Recording.read(file);
        assertThat(r.steps()).isEqualTo(10);
        assertThat(r.images()).isEqualTo(2);
        assertThat(r.labels()).containsExactly(1, 6);
        assertThat(r.metadata()).containsEntry("sampler", "ddim").containsEntry("model", "dit-patterns");

        Path compare = tmp.resolve("c.json");
        ok(args("compare", "--model", model, "--labels", "1,6", "--steps", 10, "--warmup", 0, "--quiet",
                "--out", tmp.resolve("c.png"), "--json", compare, "--policy", "fora:2,fora:3,fora:5,taylorseer:3"));
        Path json = tmp.resolve("replay.json");
        Result rep = ok(args("replay", "--recording", file, "--policy", "fora:2,fora:3,fora:5,taylorseer:3,fbcache:0.3",
                "--against", compare, "--json", json));
        assertThat(rep.out()).contains("| fora:3", "| fbcache:0.3", "est. error", "measured PSNR dB", "Spearman");
        JsonArray a = JsonParser.parseString(Files.readString(json)).getAsJsonArray();
        assertThat(a).hasSize(6); // none first
        assertThat(a.get(0).getAsJsonObject().get("compute_fraction").getAsDouble()).isEqualTo(1.0);
        JsonObject fora3 = a.get(2).getAsJsonObject();
        assertThat(fora3.get("compute_fraction").getAsDouble()).isCloseTo(0.4, within(1e-9));
        assertThat(fora3.get("estimated_error").getAsDouble()).isPositive();
        assertThat(fora3.get("measured_psnr_db").getAsDouble()).isPositive();
        assertThat(a.get(5).getAsJsonObject().get("measured_psnr_db").isJsonNull()).isTrue();

        Result bad = run(args("replay", "--recording", tmp.resolve("missing.frec"), "--policy", "fora:3"));
        assertThat(bad.exitCode()).isEqualTo(ExitCodes.USAGE);
        assertThat(bad.err()).contains("--recording");
    }

    @Test
    void calibratePrintsTheSpecAndWritesTheCalibration() throws Exception {
        Path model = TestModels.model();
        Path json = tmp.resolve("cal.json");
        Result r = ok(args("calibrate", "--model", model, "--policy", "teacache", "--target-speedup", 2, "--steps", 12,
                "--images", 6, "--json", json, "--quiet"));
        assertThat(r.out()).contains("polynomial", "threshold", "held out", "spec              teacache:");
        JsonObject o = JsonParser.parseString(Files.readString(json)).getAsJsonObject();
        String spec = o.get("spec").getAsString();
        assertThat(spec).startsWith("teacache:");
        assertThat(o.get("polynomial_ascending").getAsJsonArray()).hasSize(3);
        assertThat(o.getAsJsonObject("calibration").get("flop_speedup").getAsDouble()).isCloseTo(2, within(0.1));
        assertThat(o.getAsJsonObject("held_out").get("flop_speedup").getAsDouble()).isPositive();
        // the printed spec runs
        ok(args("generate", "--model", model, "--labels", "3", "--steps", 12, "--policy", spec, "--out", tmp.resolve("g.png"),
                "--quiet"));
        Result bad = run(args("calibrate", "--model", model, "--policy", "fora", "--target-speedup", 2));
        assertThat(bad.exitCode()).isEqualTo(ExitCodes.USAGE);
        assertThat(bad.err()).contains("fbcache, teacache, magcache");
    }

    @Test
    void comparePlotsQualityAgainstSpeedup() throws Exception {
        Path model = TestModels.model();
        Path plot = tmp.resolve("p.png");
        ok(args("compare", "--model", model, "--labels", "0,1", "--steps", 6, "--warmup", 0, "--quiet", "--out",
                tmp.resolve("c.png"), "--plot", plot, "--policy", "fora:2,fora:3,taylorseer:3"));
        BufferedImage img = ImageIO.read(plot.toFile());
        assertThat(img.getWidth()).isEqualTo(2 * 760);
        assertThat(img.getHeight()).isEqualTo(560);
        Result bad = run(args("compare", "--model", model, "--labels", "0", "--steps", 2, "--plot", plot, "--plot-x", "time",
                "--out", tmp.resolve("c2.png")));
        assertThat(bad.exitCode()).isEqualTo(ExitCodes.USAGE);
    }
}
