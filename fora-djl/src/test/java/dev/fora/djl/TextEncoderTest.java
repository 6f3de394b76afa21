package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.core.model.TextEmbeddings;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The prompt side of PixArt-α against its Python references ({@code fora_tools.t5_fixture}): the
 * converted tokenizer against SentencePiece's own ids, the TorchScript T5 against the eager
 * encoder's embeddings, and the typed errors.
 */
class TextEncoderTest {

    static final Path FAMILIES = Path.of("src/test/resources/families");
    static final Path MODEL = FAMILIES.resolve("pixart-small");
    static TextEncoder encoder;

    @BeforeAll
    static void load() throws Exception {
        encoder = TextEncoder.load(MODEL);
    }

    @AfterAll
    static void close() {
        encoder.close();
    }

    static JsonObject json(Path file) throws IOException {
        return JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8)).getAsJsonObject();
    }

    static long[] longs(JsonElement a) {
        JsonArray arr = a.getAsJsonArray();
        long[] out = new long[arr.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = arr.get(i).getAsLong();
        }
        return out;
    }

    @Test
    void tokenizerIdsEqualSentencePieceOnTheCorpus() throws Exception {
        JsonArray cases = json(FAMILIES.resolve("pixart-small-tokenizer-ids.json")).getAsJsonArray("cases");
        assertThat(cases.size()).isGreaterThanOrEqualTo(1000);
        List<String> wrong = new ArrayList<>();
        for (JsonElement c : cases) {
            String text = c.getAsJsonObject().get("text").getAsString();
            long[] want = longs(c.getAsJsonObject().get("ids"));
            long[] got = encoder.tokenizer().ids(text);
            if (!Arrays.equals(got, want)) {
                wrong.add("\"" + text.replace("\n", "\\n").replace("\t", "\\t") + "\": " + Arrays.toString(got) + " != "
                        + Arrays.toString(want));
            }
        }
        assertThat(wrong).as("prompts whose ids differ from SentencePiece's (of %d)", cases.size()).isEmpty();
    }

    @Test
    void embeddingsEqualThePythonReference() throws Exception {
        JsonObject ref = json(FAMILIES.resolve("pixart-small-text-reference.json"));
        List<String> prompts = new ArrayList<>();
        ref.getAsJsonArray("prompts").forEach(p -> prompts.add(p.getAsString()));
        assertThat(prompts).hasSize(10);
        PromptTokenizer.Tokens tokens = encoder.tokenizer().tokenize(prompts);
        for (int i = 0; i < prompts.size(); i++) {
            assertThat(tokens.ids(i)).as("ids of prompt %d", i).containsExactly(longs(ref.getAsJsonArray("ids").get(i)));
            assertThat(tokens.mask(i)).as("mask of prompt %d", i).containsExactly(longs(ref.getAsJsonArray("mask").get(i)));
        }
        int before = encoder.manager().getManagedArrays().size();
        TextEmbeddings got = encoder.encode(prompts);
        assertThat(encoder.manager().getManagedArrays()).as("arrays left after encode").hasSize(before);
        TextEmbeddings want = TextEmbeddingFiles.read(FAMILIES.resolve("pixart-small-text-reference.npz"));
        assertThat(got.size()).isEqualTo(10);
        assertThat(got.mask()).containsExactly(want.mask());
        float[] g = got.values();
        float[] w = want.values();
        assertThat(g).hasSameSizeAs(w);
        double max = 0;
        for (int i = 0; i < g.length; i++) {
            max = Math.max(max, Math.abs(g[i] - w[i]));
        }
        assertThat(max).as("max abs difference to the Python embeddings").isLessThanOrEqualTo(1e-5);
    }

    @Test
    void aLongPromptIsCutKeepingTheEnd() {
        String longPrompt = "a red square and a blue circle and two cats on a green lake at sunset";
        PromptTokenizer.Tokens t = encoder.tokenizer().tokenize(List.of(longPrompt, "two cats"));
        long[] full = encoder.tokenizer().ids(longPrompt);
        assertThat(full.length).isGreaterThan(8);
        assertThat(t.truncated(0)).isTrue();
        assertThat(t.truncated(1)).isFalse();
        assertThat(t.ids(0)).startsWith(Arrays.copyOf(full, 7)).endsWith(encoder.spec().eosId());
        assertThat(t.mask(0)).containsOnly(1L);
        assertThat(t.mask(1)).contains(0L);
        // the row of a prompt does not depend on the other prompts
        assertThat(encoder.encode(List.of("two cats")).values())
                .containsExactly(encoder.encode(List.of(longPrompt, "two cats")).rows(new int[] {1}).values());
    }

    @Test
    void anEmptyPromptListIsRefused() {
        assertThatThrownBy(() -> encoder.encode(List.of())).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("no prompts");
        assertThat(encoder.encode(List.of("")).mask()).containsExactly(true, false, false, false, false, false, false, false);
    }

    @Test
    void aModelWithoutATextEncoderIsATypedError(@TempDir Path tmp) throws Exception {
        Path dir = copy(tmp);
        editManifest(dir, m -> m.getAsJsonObject("files").remove("text_encoder"));
        assertThatThrownBy(() -> TextEncoder.load(dir)).isInstanceOf(ModelLoadException.class)
                .hasMessageContaining("no text encoder")
                .satisfies(e -> assertThat(((ModelLoadException) e).reason()).isEqualTo(ModelLoadException.Reason.MISSING_FILE));
        assertThatThrownBy(() -> TextEncoder.load(FAMILIES.resolve("dit-latent-small"))).isInstanceOf(ModelLoadException.class)
                .hasMessageContaining("class labels");
    }

    @Test
    void aTokenizerLargerThanTheEncoderVocabularyIsATypedError(@TempDir Path tmp) throws Exception {
        Path dir = copy(tmp);
        editManifest(dir, m -> m.getAsJsonObject("text_encoder").addProperty("vocab_size", 100));
        assertThatThrownBy(() -> TextEncoder.load(dir)).isInstanceOf(ModelLoadException.class)
                .hasMessageContaining("the tokenizer does not match the text encoder")
                .hasMessageContaining("only 100 ids")
                .satisfies(e -> assertThat(((ModelLoadException) e).reason()).isEqualTo(ModelLoadException.Reason.SHAPE_MISMATCH));
    }

    @Test
    void aWidthOtherThanTheCaptionsIsATypedError(@TempDir Path tmp) throws Exception {
        Path dir = copy(tmp);
        editManifest(dir, m -> m.getAsJsonObject("text_encoder").addProperty("width", 16));
        assertThatThrownBy(() -> TextEncoder.load(dir)).isInstanceOf(ModelLoadException.class)
                .hasMessageContaining("captions of 8 x 32");
    }

    static Path copy(Path tmp) throws IOException {
        Path dir = tmp.resolve("pixart-small");
        Files.createDirectories(dir);
        try (Stream<Path> files = Files.list(MODEL)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        return dir;
    }

    static void editManifest(Path dir, java.util.function.Consumer<JsonObject> edit) throws IOException {
        Path m = dir.resolve(ModelManifest.FILE_NAME);
        JsonObject o = json(m);
        edit.accept(o);
        Files.writeString(m, o.toString());
    }
    /** The example of docs/prompts.md, as written there, on the fixture. */
    @Test
    void theExampleOfPromptsMd() throws Exception {
        Path dir = MODEL;
        TextEmbeddings prompts;
        try (TextEncoder t5 = TextEncoder.load(dir)) {                     // tokenizer.json + text_encoder.pt
            prompts = t5.encode(List.of("a red fox in the snow"));          // [1, 120, 4096] + mask
        }   // close T5 (9.5 GB in bfloat16) before sampling, or keep it for the next prompts
        try (DiTPipeline pixart = DiTPipeline.load(dir)) {
            GeneratedImages out = pixart.generate(GenerationRequest.builder(prompts)
                    .sampler("dpms").steps(20).cfgScale(4.5).policy("fora:2").build());
            assertThat(out.count()).isEqualTo(1);
        }
    }
}
