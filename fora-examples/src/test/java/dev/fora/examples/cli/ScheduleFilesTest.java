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
import dev.fora.examples.engine.Generator;
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

    @Test
    void unreadableFilesAndHugeValuesMakeShortPlainMessages() throws Exception {
        String good = Files.readString(write(schedule("abc", 20, 6), "good.json"));
        assertThatThrownBy(() -> ScheduleFiles.read(tmp.resolve("missing.json"))).hasMessage(
                "cannot read schedule " + tmp.resolve("missing.json") + ": no such file");
        assertThatThrownBy(() -> ScheduleFiles.read(tmp)).hasMessage("cannot read schedule " + tmp + ": it is a directory");
        // Gson's advice to programmers ("setStrictness ... LENIENT", a troubleshooting link) stays out
        assertThatThrownBy(() -> ScheduleFiles.parse("{\"format\": NaN}", "t.json")).hasMessageContaining("malformed JSON at line 1")
                .hasMessageNotContaining("Strictness").hasMessageNotContaining("http");
        String longList = java.util.stream.IntStream.range(0, 100_000).mapToObj(Integer::toString)
                .collect(java.util.stream.Collectors.joining(", ", "[", "]"));
        assertThatThrownBy(() -> ScheduleFiles.parse(good.replace("\"steps\": 20,", "\"steps\": " + longList + ","), "t.json"))
                .hasMessageContaining(" characters)").satisfies(e -> assertThat(e.getMessage()).hasSizeLessThan(200));
        String steps = java.util.stream.IntStream.range(0, 100_000).mapToObj(Integer::toString)
                .collect(java.util.stream.Collectors.joining(", "));
        String huge = good.replaceFirst("\"attn\": \\[[0-9,\\s]*\\]", "\"attn\": [" + steps + "]");
        assertThatThrownBy(() -> ScheduleFiles.parse(huge, "t.json")).hasMessageContaining("... (100000 steps)")
                .satisfies(e -> assertThat(e.getMessage()).hasSizeLessThan(300));
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

    @Test
    void aScheduleMustListEveryBlockAndBranchOfTheModelAndItsErrorsNameTheFile() throws Exception {
        Path model = TestModels.model();
        String digest = Generator.inspect(model).manifest().file(dev.fora.djl.ModelManifest.DIT).orElseThrow().sha256();
        Path five = write(schedule(digest, 8, 5), "five.json");
        Result r = run(args("generate", "--model", model, "--labels", 0, "--steps", 8, "--quiet", "--out",
                tmp.resolve("g.png"), "--policy", "schedule:" + five));
        assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
        assertThat(r.err()).contains("schedule " + five + ": the schedule lists blocks 0..4 but the model has 6 blocks");
        Path attnOnly = tmp.resolve("attn.json");
        Files.writeString(attnOnly, Files.readString(write(schedule(digest, 8, 6), "six.json"))
                .replaceAll(",\\s*\"mlp\": \\[[0-9,\\s]*\\]", ""));
        Result branch = run(args("generate", "--model", model, "--labels", 0, "--steps", 8, "--quiet", "--out",
                tmp.resolve("g.png"), "--policy", "schedule:" + attnOnly));
        assertThat(branch.exitCode()).isEqualTo(ExitCodes.USAGE);
        assertThat(branch.err()).contains("schedule " + attnOnly + ": the schedule lists branches [attn]")
                .contains("it must list every branch");
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
    void tuneRefusesOutputsItCouldNotUseBeforeAnyWork() throws Exception {
        Path model = TestModels.model();
        Path same = tmp.resolve("same.json");
        Result r = run(args("tune", "--model", model, "--steps", 10, "--target-speedup", 3, "--quiet", "--out", same,
                "--report", same));
        assertThat(r.exitCode()).isEqualTo(ExitCodes.OUTPUT);
        assertThat(r.err()).contains("--out and --report are the same file");
        Result comma = run(args("tune", "--model", model, "--steps", 10, "--target-speedup", 3, "--quiet", "--out",
                tmp.resolve("a,b.json")));
        assertThat(comma.exitCode()).isEqualTo(ExitCodes.USAGE);
        assertThat(comma.err()).contains("cannot contain a comma");
        Result wraps = run(args("tune", "--model", model, "--steps", 10, "--target-speedup", 3, "--quiet", "--out", same,
                "--train-seed", Long.MIN_VALUE, "--heldout-seed", Long.MAX_VALUE - 5));
        assertThat(wraps.exitCode()).isEqualTo(ExitCodes.USAGE);
        assertThat(wraps.err()).contains("--heldout-seed " + (Long.MAX_VALUE - 5) + ": its 50 seeds would pass the largest seed");
        assertThat(same).doesNotExist();
    }

    @Test
    void aCancelledTuneStopsInItsSearchWithTheCancelledExitCode() throws Exception {
        Path model = TestModels.model();
        Path training = recording(model);
        // cancels every generator as soon as one is open: the tune's, before its search
        Thread canceller = new Thread(() -> {
            while (Generator.cancelAll("test cancel") == 0 && !Thread.currentThread().isInterrupted()) {
                Thread.onSpinWait();
            }
        });
        canceller.start();
        Result r;
        try {
            r = run(args("tune", "--model", model, "--steps", 10, "--target-speedup", 3, "--recording",
                    training, "--heldout-per-class", 0, "--quiet", "--out", tmp.resolve("t.json")));
        } finally {
            canceller.interrupt();
            canceller.join();
        }
        assertThat(r.exitCode()).isEqualTo(ExitCodes.CANCELLED);
        assertThat(r.err()).containsPattern("tune cancelled after 1 of [0-9]+ evaluations: test cancel");
        assertThat(tmp.resolve("t.json")).doesNotExist();
    }

    /** A recording of the test model's 10 classes, DDIM-10 (tune's training data). */
    private Path recording(Path model) throws Exception {
        Path rec = tmp.resolve("train.frec");
        ok(args("record", "--model", model, "--all-classes", "--steps", 10, "--seed", 100, "--quiet", "--out", rec));
        return rec;
    }

    @Test
    void tuneRunsAClosedLoopStageByDefaultThatOnlyKeepsMovesRaisingTheTrainingPsnr() throws Exception {
        Path model = TestModels.model();
        Path out = tmp.resolve("tuned.json");
        JsonObject o = tune(model, out, 10, "--closed-loop-per-class", 1); // the default moves, on fewer images
        assertThat(o.get("closed_loop_moves").getAsInt()).isEqualTo(TuneCommand.AUTO_CLOSED_LOOP_MOVES);
        assertThat(o.get("closed_loop_images").getAsInt()).isEqualTo(10);
        assertThat(o.get("train_psnr_db").getAsDouble()).isGreaterThanOrEqualTo(o.get("open_loop_train_psnr_db").getAsDouble());
        assertThat(o.get("flop_speedup").getAsDouble()).isGreaterThanOrEqualTo(3.0);
        assertThat(o.get("closed_loop_start").getAsString()).isIn("every forecast", "first-order forecasts");
        JsonObject single = tune(model, tmp.resolve("single.json"), 10, "--closed-loop-moves", 3, "--closed-loop-per-class", 1,
                "--single-start");
        assertThat(single.get("closed_loop_start").getAsString()).isEqualTo("every forecast");
        Result recorded = run(args("tune", "--model", model, "--steps", 10, "--target-speedup", 3, "--closed-loop-moves", 5,
                "--recording", tmp.resolve("missing.npz"), "--quiet", "--out", out));
        assertThat(recorded.exitCode()).isEqualTo(ExitCodes.USAGE);
    }
}
