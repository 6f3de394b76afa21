package dev.fora.examples.cli;

import static dev.fora.examples.cli.CommandsTest.args;
import static dev.fora.examples.cli.CommandsTest.ok;
import static dev.fora.examples.cli.CommandsTest.run;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.CacheSchedule;
import dev.fora.core.cache.ScheduleException;
import dev.fora.core.cache.SchedulePolicy;
import dev.fora.core.cache.WarmupCooldown;
import dev.fora.examples.cli.CommandsTest.Result;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The schedule file, the schedule: spec, and fora tune on the shipped model. */
class ScheduleFilesTest {

    @TempDir
    Path tmp;

    private static CacheSchedule schedule(String model, int steps, int blocks) {
        int[][][] s = new int[blocks][2][];
        for (int b = 0; b < blocks; b++) {
            int every = b + 2;
            s[b][0] = java.util.stream.IntStream.range(0, steps).filter(k -> k % every == 0).toArray();
            s[b][1] = new int[] {0, steps / 2};
        }
        return new CacheSchedule(new CacheSchedule.Target(model, "ddim", steps), List.of("attn", "mlp"), s,
                CacheSchedule.Forecast.hiCache(3, 0.75), false);
    }

    private Path write(CacheSchedule s, String name) {
        Path file = tmp.resolve(name);
        ScheduleFiles.write(s, file, "--out");
        return file;
    }

    @Test
    void aWrittenScheduleReadsBackTheSame() {
        CacheSchedule s = schedule("abc", 20, 6);
        CacheSchedule back = ScheduleFiles.read(write(s, "s.json"));
        assertThat(back.target()).isEqualTo(s.target());
        assertThat(back.forecast()).isEqualTo(s.forecast());
        assertThat(back.branches()).isEqualTo(s.branches());
        for (int b = 0; b < 6; b++) {
            for (int r = 0; r < 2; r++) {
                assertThat(back.computeSteps(b, r)).containsExactly(s.computeSteps(b, r));
            }
        }
    }

    @Test
    void badFilesAreTypedErrorsNamingTheProblem() throws Exception {
        String good = Files.readString(write(schedule("abc", 20, 6), "good.json"));
        assertReason("{\"format\": ", ScheduleException.Reason.MALFORMED, "not valid JSON");
        assertReason(good + " {}", ScheduleException.Reason.MALFORMED, "not valid JSON");
        assertReason("[1, 2]", ScheduleException.Reason.MALFORMED, "not a JSON object");
        assertReason(good.replace("\"steps\": 20,", ""), ScheduleException.Reason.MALFORMED, "\"steps\" is missing");
        assertReason(good.replace("\"steps\": 20,", "\"steps\": \"20\","), ScheduleException.Reason.MALFORMED, "integer");
        assertReason(good.replace("\"steps\": 20,", "\"steps\": 20, \"extra\": 1,"), ScheduleException.Reason.MALFORMED,
                "unknown field \"extra\"");
        assertReason(good.replace("\"kind\": \"hicache\"", "\"kind\": \"magic\""), ScheduleException.Reason.MALFORMED,
                "forecast kind \"magic\"");
        assertReason(good.replace("\"block\": 5", "\"block\": 9"), ScheduleException.Reason.UNKNOWN_BLOCK, "block 9");
        assertReason(good.replace("\"block\": 5", "\"block\": 4"), ScheduleException.Reason.MALFORMED, "block 4 is listed twice");
        assertThatThrownBy(() -> ScheduleFiles.read(tmp.resolve("missing.json"))).isInstanceOfSatisfying(ScheduleException.class,
                e -> assertThat(e.reason()).isEqualTo(ScheduleException.Reason.MALFORMED)).hasMessageContaining("missing.json");
    }

    private static void assertReason(String text, ScheduleException.Reason reason, String message) {
        assertThatThrownBy(() -> ScheduleFiles.parse(text, "t.json")).isInstanceOfSatisfying(ScheduleException.class,
                e -> assertThat(e.reason()).isEqualTo(reason)).hasMessageContaining("t.json").hasMessageContaining(message);
    }

    @Test
    void theSpecComposesWithWarmupCooldownAndAllowFlags() {
        Path file = write(schedule("abc", 20, 6), "s.json");
        String spec = "warmup:2,cooldown:3,schedule:" + file + ",allow=steps,allow=model";
        CachePolicy p = Policies.parse(spec);
        assertThat(p).isInstanceOf(WarmupCooldown.class);
        SchedulePolicy inner = SchedulePolicy.in(p).orElseThrow();
        assertThat(inner.allowed()).containsExactlyInAnyOrder(SchedulePolicy.Allow.STEPS, SchedulePolicy.Allow.MODEL);
        assertThat(p.spec()).contains("warmup:2,cooldown:3,schedule:" + file + ",allow=model,allow=steps");
        assertThat(Policies.parse(p.spec().orElseThrow()).spec()).isEqualTo(p.spec());
        assertThat(CachePolicies.split("fora:3," + spec + ",taylorseer:5,2")).containsExactly("fora:3", spec, "taylorseer:5,2");
        assertThat(Policies.noneAnd(List.of("fora:3," + spec))).containsKeys("none", "fora:3", spec);
        assertThatThrownBy(() -> Policies.parse("schedule:" + file + ",allow=everything")).isInstanceOf(CliException.class)
                .hasMessageContaining("allow=everything");
        assertThatThrownBy(() -> Policies.parse("warmup:0,schedule:" + file)).isInstanceOf(CliException.class)
                .hasMessageContaining(">= 1");
        assertThatThrownBy(() -> Policies.parse("warmup:1,".repeat(5000) + "schedule:" + file)).isInstanceOf(CliException.class)
                .hasMessageContaining("nest more than 16 deep");
        assertThatThrownBy(() -> Policies.parse("schedule:" + tmp.resolve("none.json"))).isInstanceOf(CliException.class)
                .hasMessageContaining("none.json");
        assertThat(new SchedulePolicy(schedule("abc", 20, 6), "x.json", Set.of()).spec()).contains("schedule:x.json");
    }

    @Test
    void aScheduleForAnotherModelIsAUsageErrorUnlessAllowed() throws Exception {
        Path model = TestModels.model();
        Path file = write(schedule("not-this-model", 8, 6), "other.json");
        Result r = run(args("compare", "--model", model, "--labels", "0,4", "--steps", 8, "--warmup", 0, "--quiet",
                "--out", tmp.resolve("c.png"), "--policy", "schedule:" + file));
        assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
        assertThat(r.err()).contains("not-this-model").contains("allow=model");
        ok(args("compare", "--model", model, "--labels", "0,4", "--steps", 8, "--warmup", 0, "--quiet",
                "--out", tmp.resolve("c.png"), "--policy", "schedule:" + file + ",allow=model"));
        Result steps = run(args("compare", "--model", model, "--labels", "0,4", "--steps", 9, "--warmup", 0, "--quiet",
                "--out", tmp.resolve("c.png"), "--policy", "schedule:" + file + ",allow=model"));
        assertThat(steps.exitCode()).isEqualTo(ExitCodes.USAGE);
        assertThat(steps.err()).contains("8 steps, not 9");
    }

    /** {@code fora tune} at a 3x target with 60 moves on training seeds 100.., writing {@code out}; its report. */
    private JsonObject tune(Path model, Path out, int steps, Object... more) throws Exception {
        Path report = tmp.resolve("report.json");
        List<Object> a = new ArrayList<>(List.of("tune", "--model", model, "--steps", steps, "--target-speedup", 3,
                "--moves", 60, "--heldout-per-class", 1, "--train-seed", 100, "--quiet", "--out", out, "--report", report));
        a.addAll(List.of(more));
        ok(args(a.toArray()));
        return JsonParser.parseString(Files.readString(report)).getAsJsonObject();
    }

    @Test
    void tuneWritesAScheduleThatComparesAcceptsAndAReport() throws Exception {
        Path model = TestModels.model();
        Path out = tmp.resolve("tuned.json");
        JsonObject o = tune(model, out, 12, "--closed-loop-moves", 0);
        assertThat(o.get("spec").getAsString()).isEqualTo("schedule:" + out);
        assertThat(o.get("flop_speedup").getAsDouble()).isGreaterThanOrEqualTo(3.0);
        assertThat(o.get("replay_estimate").getAsDouble()).isLessThanOrEqualTo(o.get("uniform_replay_estimate").getAsDouble());
        assertThat(o.get("heldout_psnr_db").getAsDouble()).isGreaterThan(10);
        assertThat(o.get("heldout_flop_speedup").getAsDouble()).isCloseTo(o.get("flop_speedup").getAsDouble(),
                org.assertj.core.data.Offset.offset(1e-9));
        assertThat(o.getAsJsonObject("host").get("cpu").getAsString()).isEqualTo(Host.describe().get("cpu"));
        Path json = tmp.resolve("c.json");
        // A warm-up round runs fewer steps than 12 for the other policies; the schedule warms up at its own.
        ok(args("compare", "--model", model, "--labels", "0,4", "--steps", 12, "--warmup", 1, "--quiet",
                "--out", tmp.resolve("c.png"), "--json", json, "--policy", o.get("spec").getAsString()));
        assertThat(Files.readString(json)).contains("schedule:" + out);
        Result overlap = run(args("tune", "--model", model, "--steps", 10, "--target-speedup", 3, "--moves", 1,
                "--train-seed", 0, "--heldout-seed", 5, "--quiet", "--out", out));
        assertThat(overlap.exitCode()).isEqualTo(ExitCodes.USAGE);
        assertThat(overlap.err()).contains("overlap");
    }

    @Test
    void tuneRunsAClosedLoopStageByDefaultThatOnlyKeepsMovesRaisingTheTrainingPsnr() throws Exception {
        Path model = TestModels.model();
        Path out = tmp.resolve("tuned.json");
        JsonObject o = tune(model, out, 10);
        assertThat(o.get("closed_loop_moves").getAsInt()).isEqualTo(TuneCommand.AUTO_CLOSED_LOOP_MOVES);
        assertThat(o.get("train_psnr_db").getAsDouble()).isGreaterThanOrEqualTo(o.get("open_loop_train_psnr_db").getAsDouble());
        assertThat(o.get("flop_speedup").getAsDouble()).isGreaterThanOrEqualTo(3.0);
        Result recorded = run(args("tune", "--model", model, "--steps", 10, "--target-speedup", 3, "--closed-loop-moves", 5,
                "--recording", tmp.resolve("missing.npz"), "--quiet", "--out", out));
        assertThat(recorded.exitCode()).isEqualTo(ExitCodes.USAGE);
    }
}
