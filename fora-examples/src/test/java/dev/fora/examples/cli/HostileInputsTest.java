package dev.fora.examples.cli;

import static dev.fora.examples.cli.CommandsTest.args;
import static dev.fora.examples.cli.CommandsTest.ok;
import static dev.fora.examples.cli.CommandsTest.run;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.recording.Recording;
import dev.fora.examples.Main;
import dev.fora.examples.cli.CommandsTest.Result;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The hostile cases of issue 26 through the CLI: each gives exit 2 (usage), 3 (model) or 4
 * (output) with one plain line, never an internal error, and destroys no input.
 */
class HostileInputsTest {

    @TempDir
    static Path shared;

    @TempDir
    Path tmp;

    /** A 3-step recording of two images of the shipped model. */
    private static Path recording;

    @BeforeAll
    static void record() {
        recording = shared.resolve("r.frec");
        ok(args("record", "--model", TestModels.model(), "--labels", "1,6", "--steps", 3, "--out", recording, "--quiet"));
    }

    private static void fails(Result r, int code, String... fragments) {
        assertThat(r.exitCode()).as(r.err()).isEqualTo(code);
        String err = r.err().strip();
        assertThat(err.lines().count()).as(err).isEqualTo(1);
        assertThat(err).contains(fragments).doesNotContain("\tat ", "Exception", "internal error", "java.");
    }

    // ---- item 2: no command overwrites its own input -------------------------------------------

    @Test
    void anOutputThatIsAnInputIsRefusedAndTheInputKept() throws Exception {
        byte[] before = Files.readAllBytes(recording);
        fails(run(args("replay", "--recording", recording, "--json", recording)), ExitCodes.OUTPUT, "--json",
                "--recording", "same file");
        Path compare = Files.writeString(tmp.resolve("c.json"), "[]\n");
        Files.createDirectory(tmp.resolve("sub"));
        fails(run(args("replay", "--recording", recording, "--against", compare, "--json",
                tmp.resolve("sub/../c.json"))), ExitCodes.OUTPUT, "--against", "same file");
        assertThat(Files.readString(compare)).isEqualTo("[]\n");
        Path npz = Files.copy(FamiliesCliTest.PROMPTS, tmp.resolve("e.npz"));
        byte[] prompts = Files.readAllBytes(npz);
        fails(run(args("generate", "--model", FamiliesCliTest.PIXART, "--text-embeddings", npz, "-o", npz, "--quiet")),
                ExitCodes.OUTPUT, "--text-embeddings", "same file");
        Path hard = Files.createLink(tmp.resolve("hard.npz"), npz);
        fails(run(args("compare", "--model", FamiliesCliTest.PIXART, "--text-embeddings", npz, "--json", hard, "--quiet")),
                ExitCodes.OUTPUT, "same file");
        assertThat(Files.readAllBytes(npz)).isEqualTo(prompts);
        assertThat(Files.readAllBytes(recording)).isEqualTo(before);
    }

    // ---- item 4 --------------------------------------------------------------------------------

    @Test
    void calibrateRejectsASeedWhoseHeldOutImagesWouldOverflow() {
        fails(run(args("calibrate", "--policy", "teacache", "--target-speedup", 2, "--seed", Long.MAX_VALUE, "--quiet")),
                ExitCodes.USAGE, "--seed must be <= " + (Long.MAX_VALUE - 1_000_000 - 19), "held-out");
    }

    // ---- items 7 and 8: corrupt recordings -----------------------------------------------------

    @Test
    void corruptHeadersAreNamedFieldByField() throws Exception {
        byte[] bytes = Files.readAllBytes(recording);
        String[][] cases = {
            {"steps=3", "steps=-1", "steps is -1"},
            {"images=2", "images=-2", "images is -2"},
            {"steps=3", "steps=2000000000", "steps 2000000000"},
            {"config.conditioning=classes\\:10", "config.conditioning=classes", "config.conditioning is \"classes\""},
            {"labels=1,6", "labels=1", "labels has 1 entries but images is 2"},
        };
        for (String[] c : cases) {
            Path file = Files.write(tmp.resolve("bad.frec"), withHeader(bytes, c[0], c[1]));
            fails(run(args("replay", "--recording", file, "--policy", "fora:3")), ExitCodes.USAGE, "--recording",
                    "corrupt recording", c[2]);
        }
    }

    @Test
    void aNonFiniteValueIsACorruptRecordingNotAPolicyError() throws Exception {
        byte[] bytes = Files.readAllBytes(recording);
        int body = bodyStart(bytes);
        byte[] timestep = bytes.clone();
        ByteBuffer.wrap(timestep).putFloat(body, Float.NaN);
        fails(run(args("replay", "--recording", Files.write(tmp.resolve("t.frec"), timestep), "--policy", "fora:3")),
                ExitCodes.USAGE, "corrupt recording", "timestep of step 0 is NaN");
        byte[] token = bytes.clone();
        ByteBuffer.wrap(token).putFloat(body + 4 + 40, Float.NaN);
        fails(run(args("replay", "--recording", Files.write(tmp.resolve("k.frec"), token), "--policy", "fora:3")),
                ExitCodes.USAGE, "corrupt recording", "tokens of step 0", "NaN");
    }

    /** The recording with one header line replaced (and the header length fixed). */
    private static byte[] withHeader(byte[] bytes, String from, String to) {
        int length = ByteBuffer.wrap(bytes).getInt(14);
        String header = new String(bytes, 18, length, StandardCharsets.UTF_8);
        assertThat(header).contains(from + "\n");
        byte[] h = header.replace(from + "\n", to + "\n").getBytes(StandardCharsets.UTF_8);
        ByteBuffer out = ByteBuffer.allocate(bytes.length - length + h.length);
        out.put(bytes, 0, 14).putInt(h.length).put(h).put(bytes, 18 + length, bytes.length - 18 - length);
        return out.array();
    }

    private static int bodyStart(byte[] bytes) {
        return 18 + ByteBuffer.wrap(bytes).getInt(14);
    }

    // ---- item 9 --------------------------------------------------------------------------------

    @Test
    void aRecordingLargerThanTheHeapIsRefusedBeforeSampling() {
        Path out = tmp.resolve("huge.frec");
        Result r = run(args("record", "--all-classes", "--per-class", 10_000, "--steps", 1000, "--out", out, "--quiet"));
        fails(r, ExitCodes.USAGE, "a recording of 100000 images x 1000 steps needs", "images of 1000 steps fit");
        assertThat(out).doesNotExist();
    }

    // ---- item 10 -------------------------------------------------------------------------------

    @Test
    void aPolicyWhoseMeasurementWasNotRecordedIsNamedAndTheOtherRowsPrinted() throws Exception {
        Recording r = Recording.read(recording);
        int steps = r.steps();
        float[] timesteps = new float[steps];
        float[][] tokens = new float[steps][];
        int vectors = r.config().layout().modulation().size();
        float[][][][] modulations = new float[steps][r.config().depth()][vectors][];
        float[][][] features = new float[steps][r.config().features()][];
        for (int s = 0; s < steps; s++) {
            timesteps[s] = r.timestep(s);
            tokens[s] = r.tokens(s);
            for (int b = 0; b < r.config().depth(); b++) {
                for (int v = 0; v < vectors; v++) {
                    modulations[s][b][v] = r.modulation(s, b, v);
                }
            }
            for (int f = 0; f < r.config().features(); f++) {
                features[s][f] = r.feature(s, f);
            }
        }
        Path file = tmp.resolve("no-mi.frec");
        new Recording(r.config(), r.images(), r.guided(), r.labels(), r.metadata(), timesteps, tokens, modulations, features,
                null).write(file);
        Result rep = run(args("replay", "--recording", file, "--policy", "fora:3,teacache:0.3,fbcache:0.2"));
        fails(rep, ExitCodes.USAGE, "teacache:0.3", "no modulated inputs", "modulated input change");
        assertThat(rep.out()).containsPattern("\\| fora:3 +\\| +0\\.\\d{3} \\|").containsPattern("\\| fbcache:0.2 +\\| +[01]\\.")
                .containsPattern("\\| teacache:0.3 +\\| +- \\|");
    }

    // ---- item 11 -------------------------------------------------------------------------------

    @Test
    void aCompareJsonOfAnotherStepCountOrSamplerIsRejected() throws Exception {
        Path other = Files.writeString(tmp.resolve("c.json"), "[{\"model\": \"dit-patterns\", \"policy\": \"fora:3\", "
                + "\"sampler\": \"ddim\", \"steps\": 50, \"psnr_db\": 30.0}]");
        fails(run(args("replay", "--recording", recording, "--against", other)), ExitCodes.USAGE, "--against",
                "steps 50", "recording's steps is 3");
        Files.writeString(other, "[{\"model\": \"dit-patterns\", \"policy\": \"fora:3\", \"sampler\": \"ddpm\", \"steps\": 3, "
                + "\"psnr_db\": 30.0}]");
        fails(run(args("replay", "--recording", recording, "--against", other)), ExitCodes.USAGE, "sampler ddpm",
                "recording's sampler is ddim");
    }

    // ---- item 12: plain words ------------------------------------------------------------------

    @Test
    void filesThatCannotBeReadOrWrittenAreNamedInPlainWords() throws Exception {
        fails(run(args("replay", "--recording", tmp.resolve("nonexistent.frec"))), ExitCodes.USAGE, "--recording",
                "nonexistent.frec", "no such file");
        fails(run(args("replay", "--recording", tmp)), ExitCodes.USAGE, "--recording", "is a directory");
        fails(run(args("generate", "--model", FamiliesCliTest.PIXART, "--text-embeddings", tmp.resolve("none.npz"),
                "--quiet", "--out", tmp.resolve("x.png"))), ExitCodes.USAGE, "--text-embeddings", "no such file");
        fails(run(args("generate", "-o", "", "--quiet")), ExitCodes.USAGE, "--out", "file name is empty");
        fails(run(args("replay", "--recording", recording, "--json", "")), ExitCodes.USAGE, "--json",
                "file name is empty");
        Path file = Files.writeString(tmp.resolve("afile"), "x");
        fails(run(args("generate", "--out", file.resolve("sub/x.png"), "--quiet")), ExitCodes.OUTPUT, "--out",
                file + " is a file, not a directory");
        Path model = Files.createDirectories(tmp.resolve("model/manifest.json")).getParent();
        fails(run(args("generate", "--model", model, "--out", tmp.resolve("y.png"), "--quiet")), ExitCodes.MODEL,
                "manifest.json", "cannot read");
    }

    // ---- item 13 -------------------------------------------------------------------------------

    @Test
    void everyHelpFormatsWithoutAPicocliWarning() {
        PrintStream err = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            for (String command : Main.commandLine().getSubcommands().keySet()) {
                Result r = ok(args(command, "--help"));
                assertThat(r.out()).as(command).doesNotContain("%n");
            }
        } finally {
            System.setErr(err);
        }
        assertThat(captured.toString(StandardCharsets.UTF_8)).doesNotContain("picocli WARN", "Could not format");
        assertThat(ok("calibrate", "--help").out()).contains("within 1 % of");
    }

    // ---- item 14 -------------------------------------------------------------------------------

    @Test
    void replayOfNoneGivesANoneRow() {
        Result r = ok(args("replay", "--recording", recording, "--policy", "none"));
        assertThat(r.out()).containsPattern("\\| none +\\| +1\\.000 \\| +1\\.00x \\| +0\\.0000 \\|");
    }
}
