package dev.fora.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.gson.JsonParser;
import dev.fora.examples.cli.CommandsTest.Result;
import dev.fora.examples.image.ImageBatch;
import dev.fora.examples.image.ImageGrid;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Output files: atomic writes, no temporary files left behind, targets that must not be replaced. */
class OutputsTest {

    @TempDir
    Path tmp;

    /** The names in {@link #tmp}, temporary files included. */
    private List<String> files() throws IOException {
        try (Stream<Path> s = Files.list(tmp)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static void assertOutputError(ThrowingCallable call, String... fragments) {
        assertThatThrownBy(call).isInstanceOfSatisfying(CliException.class, e -> {
            assertThat(e.exitCode()).isEqualTo(ExitCodes.OUTPUT);
            assertThat(e.getMessage()).contains(fragments).doesNotContain("\n");
        });
    }

    @Test
    void failedJsonWriteKeepsThePreviousFileAndLeavesNoTemporaryFile() throws Exception {
        Path json = Files.writeString(tmp.resolve("run.json"), "{\"old\": true}\n");
        Map<String, Object> bad = new LinkedHashMap<>();
        bad.put("first", 1);
        bad.put("second", Double.NaN); // Gson fails here, after writing the start of the object
        assertOutputError(() -> Outputs.writeJson(bad, json, "--json"), "--json", "run.json");
        assertThat(Files.readString(json)).isEqualTo("{\"old\": true}\n");
        assertThat(files()).containsExactly("run.json");

        Outputs.writeJson(Map.of("new", 2), json, "--json");
        assertThat(JsonParser.parseString(Files.readString(json)).getAsJsonObject().get("new").getAsInt()).isEqualTo(2);
        assertThat(Files.readString(json)).endsWith("}\n");
        assertThat(files()).containsExactly("run.json");
    }

    @Test
    void failedWriteMidwayKeepsThePreviousFileAndLeavesNoTemporaryFile() throws Exception {
        Path png = Files.writeString(tmp.resolve("grid.png"), "previous");
        assertOutputError(() -> Outputs.write(png, "--out", out -> {
            out.write(new byte[100_000]);
            throw new IOException("disk full");
        }), "--out", "grid.png", "disk full");
        assertThat(Files.readString(png)).isEqualTo("previous");
        assertThat(files()).containsExactly("grid.png");
    }

    @Test
    void writesAGridInPlaceOfThePreviousFileKeepingItsMode() throws Exception {
        Path png = Files.writeString(tmp.resolve("grid.png"), "previous");
        boolean posix = Files.getFileStore(tmp).supportsFileAttributeView("posix");
        if (posix) {
            Files.setPosixFilePermissions(png, PosixFilePermissions.fromString("rw-r-----"));
        }
        ImageBatch row = new ImageBatch(new float[] {-1f, 1f, 1f, -1f}, 1, 1, 2, 2);
        Outputs.writeGrid(new ImageGrid(3, 1), List.of(row, row), List.of("a", "b"), png, "--out");
        BufferedImage img = ImageIO.read(png.toFile());
        assertThat(img.getHeight()).isEqualTo(2 * 6 + 3);
        assertThat(files()).containsExactly("grid.png");
        if (posix) {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(png))).isEqualTo("rw-r-----");
            // A new output gets the default mode of a new file (not the 0600 of a temp file).
            Path fresh = tmp.resolve("fresh.json");
            Outputs.writeJson(List.of(), fresh, "--json");
            Path reference = Files.createFile(tmp.resolve("reference"));
            assertThat(Files.getPosixFilePermissions(fresh)).isEqualTo(Files.getPosixFilePermissions(reference));
        }
    }

    @Test
    void shutdownDeletesTheTemporaryFileInFlightAndKeepsThePreviousFile() throws Exception {
        Path json = Files.writeString(tmp.resolve("run.json"), "previous");
        assertOutputError(() -> Outputs.write(json, "--json", out -> {
            out.write("partial".getBytes(StandardCharsets.UTF_8));
            assertThat(files()).hasSize(2).anyMatch(n -> n.startsWith(".run.json.") && n.endsWith(".tmp"));
            Outputs.deleteInFlight(); // what the shutdown hook does on Ctrl-C
            assertThat(files()).containsExactly("run.json");
        }), "--json", "run.json");
        assertThat(Files.readString(json)).isEqualTo("previous");
        assertThat(files()).containsExactly("run.json");
    }

    @Test
    void checkWritableAcceptsANewOrRegularFileAndLeavesNothingBehind() throws Exception {
        Outputs.checkWritable(tmp.resolve("new.png"), "--out");
        Path existing = Files.writeString(tmp.resolve("old.json"), "x");
        Outputs.checkWritable(existing, "--json");
        Outputs.checkWritable(null, "--json");
        assertThat(files()).containsExactly("old.json");
    }

    @Test
    void refusesASymbolicLink() throws Exception {
        Path real = Files.writeString(tmp.resolve("real.png"), "keep");
        Path link = Files.createSymbolicLink(tmp.resolve("link.png"), real);
        Path dangling = Files.createSymbolicLink(tmp.resolve("dangling.png"), tmp.resolve("nowhere.png"));
        assertOutputError(() -> Outputs.checkWritable(link, "--out"), "--out", "link.png", "symbolic link");
        assertOutputError(() -> Outputs.checkWritable(dangling, "--out"), "--out", "dangling.png", "symbolic link");
        // Also at write time: the link may appear while sampling.
        assertOutputError(() -> Outputs.writeJson(List.of(), link, "--json"), "--json", "link.png", "symbolic link");
        assertThat(Files.isSymbolicLink(link)).isTrue();
        assertThat(Files.readString(real)).isEqualTo("keep");
    }

    @Test
    void refusesAFifo() throws Exception {
        Path fifo = tmp.resolve("pipe.png");
        int code;
        try {
            code = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start().waitFor();
        } catch (IOException e) {
            code = -1;
        }
        assumeTrue(code == 0, "mkfifo not available");
        assertOutputError(() -> Outputs.checkWritable(fifo, "--out"), "--out", "pipe.png", "not a regular file");
        assertOutputError(() -> Outputs.writeJson(List.of(), fifo, "--out"), "--out", "pipe.png", "not a regular file");
        assertThat(Files.exists(fifo, LinkOption.NOFOLLOW_LINKS)).isTrue();
        assertThat(Files.isRegularFile(fifo, LinkOption.NOFOLLOW_LINKS)).isFalse();
    }

    @Test
    void refusesADeviceNode() {
        Path devNull = Path.of("/dev/null");
        assumeTrue(Files.exists(devNull), "no /dev/null");
        assertOutputError(() -> Outputs.checkWritable(devNull, "--json"), "--json", "/dev/null", "not a regular file");
        assertThat(Files.isRegularFile(devNull, LinkOption.NOFOLLOW_LINKS)).isFalse();
    }

    @Test
    void refusesSystemDirectoriesEvenThroughALink() throws Exception {
        assumeTrue(Files.isDirectory(Path.of("/proc")) && Files.isDirectory(Path.of("/sys")), "no /proc or /sys");
        assertOutputError(() -> Outputs.checkWritable(Path.of("/proc/fora-test.png"), "--out"), "--out", "/proc",
                "system directory");
        assertOutputError(() -> Outputs.checkWritable(Path.of("/sys/fora-test.json"), "--json"), "--json", "/sys",
                "system directory");
        Path link = Files.createSymbolicLink(tmp.resolve("p"), Path.of("/proc"));
        assertOutputError(() -> Outputs.checkWritable(link.resolve("fora-test.png"), "--out"), "--out", "fora-test.png",
                "system directory");
        Files.delete(link); // @TempDir warns about links leading out of it
        if (Files.isDirectory(Path.of("/dev"))) {
            // Root may create files in /dev: refused by path, and nothing created.
            Path dev = Path.of("/dev/fora-test.png");
            assertOutputError(() -> Outputs.checkWritable(dev, "--out"), "--out", "/dev", "system directory");
            assertThat(Files.exists(dev, LinkOption.NOFOLLOW_LINKS)).isFalse();
        }
    }

    @Test
    void theCommandsRefuseBadOutputsBeforeSamplingWithOneLine() throws Exception {
        assumeTrue(Files.isDirectory(Path.of("/proc")), "no /proc");
        Path real = Files.writeString(tmp.resolve("real.json"), "keep");
        Path link = Files.createSymbolicLink(tmp.resolve("link.json"), real);
        for (Result r : List.of(CommandsTest.run("generate", "--out", "/proc/fora-test.png"),
                CommandsTest.run("compare", "--json", link.toString()))) {
            assertThat(r.exitCode()).as(r.err()).isEqualTo(ExitCodes.OUTPUT);
            assertThat(r.err().strip().lines().count()).as(r.err()).isEqualTo(1);
            assertThat(r.err()).doesNotContain("\tat ", "Exception");
        }
        assertThat(Files.readString(real)).isEqualTo("keep");
    }

    @Test
    void checkDistinctRefusesTheSameFileForTwoOutputs() throws Exception {
        Path dir = Files.createDirectory(tmp.resolve("d"));
        Path a = dir.resolve("x.json");
        assertOutputError(() -> Outputs.checkDistinct(a, "--out", a, "--json"), "--out", "--json", "x.json", "same file");
        // Spelled differently: with ".." and ".", through a linked directory, as a hard link.
        assertOutputError(() -> Outputs.checkDistinct(a, "--out", dir.resolve("../d/./x.json"), "--json"), "same file");
        Path linkedDir = Files.createSymbolicLink(tmp.resolve("l"), dir);
        assertOutputError(() -> Outputs.checkDistinct(a, "--out", linkedDir.resolve("x.json"), "--json"), "same file");
        Files.writeString(a, "x");
        Path hard = Files.createLink(tmp.resolve("hard.json"), a);
        assertOutputError(() -> Outputs.checkDistinct(hard, "--out", a, "--json"), "same file");

        Outputs.checkDistinct(a, "--out", dir.resolve("x.png"), "--json");
        Outputs.checkDistinct(a, "--out", null, "--json");
        Outputs.checkDistinct(null, "--out", a, "--json");
    }
}
