package dev.fora.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.examples.cli.CommandsTest.Result;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Errors: one line on stderr, no stack trace, a specific exit code. */
class ErrorsTest {

    @TempDir
    Path tmp;

    private static void assertOneLine(Result r, int code, String... fragments) {
        assertThat(r.exitCode()).as(r.err()).isEqualTo(code);
        String err = r.err().strip();
        assertThat(err.lines().count()).as(err).isEqualTo(1);
        assertThat(err).contains(fragments).doesNotContain("\tat ", "Exception in thread");
    }

    @Test
    void unknownPolicySpec() {
        Result r = CommandsTest.run("generate", "--policy", "bogus:3", "--out", tmp.resolve("x.png").toString());
        assertOneLine(r, ExitCodes.USAGE, "bogus");
        assertOneLine(CommandsTest.run("compare", "--policy", "fora:0"), ExitCodes.USAGE, "fora:0");
    }

    @Test
    void missingModelDirectory() {
        Result r = CommandsTest.run("generate", "--model", tmp.resolve("nowhere").toString(), "--out",
                tmp.resolve("x.png").toString());
        assertOneLine(r, ExitCodes.MODEL, "nowhere");
    }

    @Test
    void modelDirectoryWithoutManifest() throws Exception {
        Path dir = Files.createDirectory(tmp.resolve("empty-model"));
        Result r = CommandsTest.run("bench", "--model", dir.toString());
        assertOneLine(r, ExitCodes.MODEL, "manifest");
    }

    @Test
    void labelOutOfRange() {
        Path model = TestModels.model();
        Result r = CommandsTest.run("generate", "--model", model.toString(), "--labels", "0,99", "--steps", "2", "--out",
                tmp.resolve("x.png").toString(), "--quiet");
        assertOneLine(r, ExitCodes.USAGE, "label 99", "out of range");
    }

    @Test
    void unwritableOutput() {
        Result r = CommandsTest.run("generate", "--out", tmp.resolve("no/such/dir/x.png").toString());
        assertOneLine(r, ExitCodes.OUTPUT, "--out", "does not exist");
        Result j = CommandsTest.run("compare", "--json", tmp.toString());
        assertOneLine(j, ExitCodes.OUTPUT, "--json", "is a directory");
    }

    @Test
    void nanWeightsAreATypedErrorNotBlackImagesOrAMetricsCrash() throws Exception {
        Path model = NanWeights.copy(TestModels.model(), tmp.resolve("nan-model"));
        Path png = tmp.resolve("x.png");
        // compare used to die in the metrics ("convergence failed"), generate to write black images
        assertOneLine(CommandsTest.run("compare", "--model", model.toString(), "--labels", "0,1", "--steps", "3",
                "--warmup", "0", "--out", png.toString(), "--quiet"), ExitCodes.NON_FINITE,
                "not finite (NaN or infinity) at step 0 of 3", "image 0");
        assertOneLine(CommandsTest.run("generate", "--model", model.toString(), "--labels", "0", "--steps", "3", "--out",
                png.toString(), "--quiet"), ExitCodes.NON_FINITE, "not finite");
        assertThat(png).doesNotExist();
        // without the check: the black images of old
        Result r = CommandsTest.run("generate", "--model", model.toString(), "--labels", "0", "--steps", "3", "--out",
                png.toString(), "--quiet", "--no-finite-check");
        assertThat(r.exitCode()).as(r.err()).isZero();
        assertThat(png).exists();
    }

    @Test
    void badUsage() {
        assertOneLine(CommandsTest.run("generate", "--no-such-option"), ExitCodes.USAGE, "--no-such-option");
        assertOneLine(CommandsTest.run("generate", "--steps", "many"), ExitCodes.USAGE, "many");
        assertOneLine(CommandsTest.run("generate", "--sampler", "euler", "--out", tmp.resolve("x.png").toString()),
                ExitCodes.USAGE, "euler");
        assertOneLine(CommandsTest.run("bench", "--repeats", "0"), ExitCodes.USAGE, "--repeats");
        assertOneLine(CommandsTest.run("generate", "--malloc", "tcmalloc", "--out", tmp.resolve("x.png").toString()),
                ExitCodes.USAGE, "--malloc", "tcmalloc");
        assertOneLine(CommandsTest.run("frobnicate"), ExitCodes.USAGE, "frobnicate");
        assertOneLine(CommandsTest.run(), ExitCodes.USAGE, "missing command");
    }

    @Test
    void inputGapsAreUsageErrors() {
        String out = tmp.resolve("x.png").toString();
        String model = TestModels.model().toString();
        assertOneLine(CommandsTest.run("generate", "--policy", "mask:0111", "--out", out), ExitCodes.USAGE,
                "first step must be 1");
        assertOneLine(CommandsTest.run("generate", "--policy", "warmup:1,".repeat(5000) + "fora:3", "--out", out),
                ExitCodes.USAGE, "nest more than 16 deep");
        assertOneLine(CommandsTest.run("generate", "--model", model, "--labels", ",", "--out", out, "--quiet"),
                ExitCodes.USAGE, "no label given");
        assertOneLine(CommandsTest.run("generate", "--model", model, "--per-class", "2147483647", "--out", out, "--quiet"),
                ExitCodes.USAGE, "more than 100000 images");
        assertOneLine(CommandsTest.run("generate", "--model", model, "--all-classes", "--per-class", "300000000", "--out", out,
                "--quiet"), ExitCodes.USAGE, "more than 100000 images");
        String same = tmp.resolve("same").toString();
        assertOneLine(CommandsTest.run("generate", "--out", same, "--json", same), ExitCodes.OUTPUT, "--json");
    }
}
