package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.djl.ModelLoadException.Reason;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Manifests that used to load into an OutOfMemoryError, an untyped exception or the wrong
 * reason: each is now a one-line {@code BAD_MANIFEST} naming manifest.json, before any
 * allocation sized by the manifest.
 */
class ManifestGapsTest {

    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().create();

    @TempDir
    Path tmp;

    /** A copy of the test model directory, so a manifest that slips through goes on to load. */
    private Path copy() throws IOException {
        Path dst = tmp.resolve("model");
        Files.createDirectories(dst);
        try (var files = Files.list(TestModels.modelDir())) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.copy(f, dst.resolve(f.getFileName()));
            }
        }
        return dst;
    }

    private Path withManifest(Consumer<JsonObject> edit) throws IOException {
        Path dir = copy();
        Path m = dir.resolve(ModelManifest.FILE_NAME);
        JsonObject json = JsonParser.parseString(Files.readString(m)).getAsJsonObject();
        edit.accept(json);
        Files.writeString(m, GSON.toJson(json), StandardCharsets.UTF_8);
        return dir;
    }

    private Path withManifestText(byte[] content) throws IOException {
        Path dir = copy();
        Files.write(dir.resolve(ModelManifest.FILE_NAME), content);
        return dir;
    }

    /** Sets a field given by a dotted path such as {@code "files.dit.bytes"} to a raw JSON value. */
    private static void set(JsonObject root, String dottedPath, String rawJson) {
        String[] keys = dottedPath.split("\\.");
        JsonObject o = root;
        for (int i = 0; i < keys.length - 1; i++) {
            o = o.getAsJsonObject(keys[i]);
        }
        o.add(keys[keys.length - 1], JsonParser.parseString(rawJson));
    }

    private static void assertBadManifest(Path dir, String messagePart) {
        assertThatThrownBy(() -> DiTPipeline.load(dir).close())
                .isInstanceOfSatisfying(ModelLoadException.class, e -> {
                    assertThat(e.reason()).isEqualTo(Reason.BAD_MANIFEST);
                    assertThat(e.file().getFileName()).hasToString(ModelManifest.FILE_NAME);
                    assertThat(e.getMessage()).contains(messagePart).doesNotContain("\n");
                });
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        // used to fill the heap for 14 s before an OutOfMemoryError
        "diffusion.train_steps     | 1e8        | \"train_steps\" must be an integer from 1 to 100000, got 1e8",
        "diffusion.train_steps     | 2147483647 | \"train_steps\" must be an integer from 1 to 100000",
        "diffusion.train_steps     | 100001     | \"train_steps\" must be an integer from 1 to 100000",
        "diffusion.train_steps     | 999.5      | \"train_steps\" must be an integer from 1 to 100000",
        "diffusion.train_steps     | 1e999      | \"train_steps\" must be a finite number, got 1e999",
        // Python's json writes NaN, which the lenient parser reads as a string
        "diffusion.train_steps     | NaN        | \"train_steps\" must be a finite number, got \"NaN\"",
        "architecture.input_size   | 1e9        | \"input_size\" must be an integer from 1 to 512",
        "architecture.in_channels  | 65         | \"in_channels\" must be an integer from 1 to 64",
        "architecture.patch_size   | 0          | \"patch_size\" must be an integer from 1 to 512",
        "architecture.hidden_size  | 16385      | \"hidden_size\" must be an integer from 1 to 16384",
        "architecture.depth        | 2147483647 | \"depth\" must be an integer from 1 to 1024",
        "architecture.num_heads    | -8         | \"num_heads\" must be an integer from 1 to 16384",
        "architecture.num_classes  | 2147483647 | \"num_classes\" must be an integer from 1 to 100000",
        "architecture.mlp_ratio    | 1e999      | \"mlp_ratio\" must be a finite number",
        "architecture.tokens       | 16.5       | \"tokens\" must be an integer",
        "diffusion.beta_start      | -1e999     | \"beta_start\" must be a finite number",
        "diffusion.null_class      | 1e10       | \"null_class\" must be an integer",
        "format_version            | 1e400      | \"format_version\" must be a finite number",
        "files.dit.bytes           | 1e300      | \"bytes\" must be a non-negative integer below 2^63",
    })
    void numbersOutOfRangeAreBadManifests(String field, String rawValue, String message) throws Exception {
        assertBadManifest(withManifest(j -> set(j, field, rawValue)), message);
    }

    @Test
    void theLargestAllowedValuesAreRead() throws Exception {
        Path dir = withManifest(j -> {
            set(j, "diffusion.train_steps", String.valueOf(ModelManifest.MAX_TRAIN_STEPS));
            set(j, "architecture.depth", String.valueOf(ModelManifest.MAX_DEPTH));
        });
        ModelManifest m = ModelManifest.read(dir.resolve(ModelManifest.FILE_NAME));
        assertThat(m.diffusion().trainSteps()).isEqualTo(ModelManifest.MAX_TRAIN_STEPS);
        assertThat(m.config().depth()).isEqualTo(ModelManifest.MAX_DEPTH);
    }

    @ParameterizedTest
    @ValueSource(strings = {"", " \n\t "})
    void emptyManifest(String content) throws Exception {
        assertBadManifest(withManifestText(content.getBytes(StandardCharsets.UTF_8)), "the manifest is empty");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "null         | null",
        "[]           | an array",
        "[{}]         | an array",
        "1000         | a single value",
        "'\"dit.pt\"' | a single value",
    })
    void manifestThatIsNotAnObject(String content, String kind) throws Exception {
        assertBadManifest(withManifestText(content.getBytes(StandardCharsets.UTF_8)),
                "the manifest is not a JSON object but " + kind);
    }

    @Test
    void invalidJsonIsReportedOnOneLine() throws Exception {
        // without the link to Gson's troubleshooting guide on a second line
        assertBadManifest(withManifestText("{\"format\" \"fora4j-dit\"}".getBytes(StandardCharsets.UTF_8)),
                "not valid JSON: Expected ':' at line 1 column 12");
    }

    @Test
    void manifestThatIsNotUtf8() throws Exception {
        assertBadManifest(withManifestText(new byte[] {'{', (byte) 0xff, (byte) 0xfe, '}'}), "not UTF-8 text");
    }

    @Test
    void oversizedManifestIsNotRead() throws Exception {
        // a valid manifest padded past the limit: the size alone rejects it
        Path dir = copy();
        Path m = dir.resolve(ModelManifest.FILE_NAME);
        Files.writeString(m, Files.readString(m) + " ".repeat(ModelManifest.MAX_MANIFEST_BYTES));
        assertBadManifest(dir, "more than the " + ModelManifest.MAX_MANIFEST_BYTES + " a manifest may have");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "[\"a\", 1]   | \"value_range\" must be a finite number",
        "[null, 1]    | \"value_range\" must be a finite number",
        "[-1, 1e999]  | \"value_range\" must be a finite number",
        "[1.0, -1.0]  | value_range must be [low, high] with low < high",
        "[0, 0]       | value_range must be [low, high] with low < high",
    })
    void valueRangeOfTwoOrderedNumbers(String range, String message) throws Exception {
        assertBadManifest(withManifest(j -> set(j, "diffusion.value_range", range)), message);
    }

    @Test
    void classNamesMustBeStrings() throws Exception {
        Path dir = withManifest(j -> {
            JsonArray classes = j.getAsJsonArray("classes");
            classes.set(3, new JsonObject());
        });
        assertBadManifest(dir, "\"classes\" must be a string, got {}");
    }

    @Test
    void filePathThatIsNoPath() throws Exception {
        JsonElement nul = JsonParser.parseString("\"dit\\u0000.pt\"");
        Path dir = withManifest(j -> j.getAsJsonObject("files").getAsJsonObject("dit").add("path", nul));
        assertBadManifest(dir, "files.dit.path must be relative to the model directory");
    }
}
