package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDManager;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.model.TextEmbeddings;
import dev.fora.core.sampling.SamplerKind;
import dev.fora.djl.ModelLoadException.Reason;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.Consumer;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad input to the model families: text embeddings of the wrong width, token count or mask,
 * labels for a text model and text for a class model, decoders that do not fit the model, a
 * model without its null caption. Each is a typed error at load or request time, and a failed
 * request leaves no native array behind.
 */
class FamilyInputsTest {

    private static final Path PIXART = FamilyGoldenParityTest.FAMILIES.resolve("pixart-small");
    private static final Path DIT = FamilyGoldenParityTest.FAMILIES.resolve("dit-latent-small");

    private static DiTPipeline pixart;

    @TempDir
    Path tmp;

    @BeforeAll
    static void load() throws ModelLoadException {
        pixart = DiTPipeline.load(PIXART);
    }

    @AfterAll
    static void close() {
        pixart.close();
    }

    private static TextEmbeddings text(int rows, int tokens, int width, int realTokens) {
        float[] v = new float[rows * tokens * width];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) Math.sin(i * 0.37);
        }
        boolean[] mask = new boolean[rows * tokens];
        for (int r = 0; r < rows; r++) {
            for (int t = 0; t < realTokens; t++) {
                mask[r * tokens + t] = true;
            }
        }
        return new TextEmbeddings(tokens, width, v, mask);
    }

    private void failsLeavingNothing(ThrowingCallable call, String message) {
        int before = pixart.manager().getManagedArrays().size();
        assertThatThrownBy(call).isInstanceOf(IllegalArgumentException.class).hasMessageContaining(message);
        assertThat(pixart.manager().getManagedArrays()).as("arrays left under the model").hasSize(before);
    }

    @Test
    void theManifestDescribesThePixArt() {
        ModelManifest m = pixart.manifest();
        assertThat(m.textConditioned()).isTrue();
        assertThat(m.config().layout().branches()).extracting(b -> b.name()).containsExactly("attn", "cross", "mlp");
        assertThat(m.guidance().channelsFor(SamplerKind.DDIM)).isEqualTo(3);
        assertThat(m.guidance().channelsFor(SamplerKind.DPM_SOLVER_PP)).isEqualTo(4);
        assertThat(m.clipDenoised()).isFalse();
        assertThat(m.decoder().scaleFactor()).isEqualTo(0.18215);
        assertThat(pixart.decoder().orElseThrow().imageShape(new long[] {2, 4, 8, 8})).containsExactly(2, 3, 16, 16);
        assertThatThrownBy(pixart::newDiT).isInstanceOf(IllegalStateException.class).hasMessageContaining("pixart-alpha")
                .hasMessageContaining("newModel()");
    }

    @Test
    void textOfTheWrongWidthOrTokenCount() {
        failsLeavingNothing(() -> pixart.generate(GenerationRequest.builder(text(1, 8, 31, 8)).steps(2).build()),
                "text embeddings of 8 tokens x 31 do not fit the model, which takes 8 tokens x 32");
        failsLeavingNothing(() -> pixart.generate(GenerationRequest.builder(text(1, 120, 32, 8)).steps(2).build()),
                "text embeddings of 120 tokens x 32 do not fit the model, which takes 8 tokens x 32");
        try (DjlGeneration g = pixart.openGeneration(CachePolicies.parse("fora:2"), 4, 1, true);
             NDManager m = NDManager.newBaseManager()) {
            var x = m.zeros(new ai.djl.ndarray.types.Shape(1, 4, 8, 8));
            var first = dev.fora.core.sampling.SamplingStep.of(pixart.schedule(4), 0);
            failsLeavingNothing(() -> g.predictGuided(first, x, text(1, 8, 16, 8), 4.5), "do not fit the model");
            assertThat(g.nextStep()).isZero();
            g.predictGuided(first, x, text(1, 8, 32, 3), 4.5).close();
            assertThat(g.nextStep()).isEqualTo(1);
        }
    }

    @Test
    void aMaskWithoutARealTokenOrOfTheWrongLength() {
        assertThatThrownBy(() -> text(2, 8, 32, 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("row 0 of the text mask has no real token");
        assertThatThrownBy(() -> new TextEmbeddings(8, 32, new float[2 * 8 * 32], new boolean[15]))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("the mask has 15 entries");
    }

    @Test
    void labelsForATextModelAndTextForAClassModel() throws Exception {
        failsLeavingNothing(() -> pixart.generate(GenerationRequest.builder(0, 1).steps(2).build()),
                "this model is conditioned on text embeddings, not on labels [0, 1]");
        try (DiTPipeline dit = DiTPipeline.load(DIT)) {
            assertThatThrownBy(() -> dit.generate(GenerationRequest.builder(text(1, 8, 32, 8)).steps(2).build()))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("conditioned on class labels");
            assertThatThrownBy(() -> dit.generate(GenerationRequest.builder(0).steps(2).guidedChannels(5).build()))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("cannot guide 5 channels");
            assertThat(dit.guidedChannels(SamplerKind.DDIM)).isEqualTo(3);
        }
    }

    @Test
    void maskedTokensDoNotMatterAndEachPromptKeepsItsMaskOnTheNullCaption() {
        TextEmbeddings a = text(1, 8, 32, 3);
        float[] v = a.values();
        for (int i = 3 * 32; i < v.length; i++) {
            v[i] += 7f; // padding only
        }
        TextEmbeddings b = new TextEmbeddings(8, 32, v, a.mask());
        GenerationRequest.Builder base = GenerationRequest.builder(a).sampler("dpm-solver++").steps(4).cfgScale(4.5)
                .policy("fora:2").seed(3);
        float[] x = pixart.generate(base.build()).latents();
        float[] y = pixart.generate(GenerationRequest.builder(b).sampler("dpm-solver++").steps(4).cfgScale(4.5)
                .policy("fora:2").seed(3).build()).latents();
        assertThat(Goldens.maxAbsDiff(x, y)).isZero();
        try (TorchScriptPixArt model = pixart.newPixArt()) {
            TextEmbeddings nul = model.unconditionalFor(text(2, 8, 32, 5));
            assertThat(nul.mask()).containsExactly(text(2, 8, 32, 5).mask());
            assertThat(Arrays.copyOf(nul.values(), 8 * 32)).containsExactly(model.unconditional().values());
        }
    }

    // ---- at load ------------------------------------------------------------------------------

    private Path copy(Path src, String name) throws IOException {
        Path dst = tmp.resolve(name);
        Files.createDirectories(dst);
        try (var files = Files.list(src)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.copy(f, dst.resolve(f.getFileName()));
            }
        }
        return dst;
    }

    private static void edit(Path dir, Consumer<JsonObject> change) throws IOException {
        Path m = dir.resolve(ModelManifest.FILE_NAME);
        JsonObject json = JsonParser.parseString(Files.readString(m)).getAsJsonObject();
        change.accept(json);
        Files.writeString(m, new GsonBuilder().setPrettyPrinting().create().toJson(json), StandardCharsets.UTF_8);
    }

    private static void loadFails(Path dir, Reason reason, String message) {
        assertThatThrownBy(() -> DiTPipeline.load(dir).close()).isInstanceOfSatisfying(ModelLoadException.class, e -> {
            assertThat(e.reason()).isEqualTo(reason);
            assertThat(e.getMessage()).contains(message);
        });
    }

    @Test
    void aDecoderWhoseChannelsOrShapeDisagreeWithTheModel() throws Exception {
        Path d = copy(DIT, "channels");
        edit(d, j -> j.getAsJsonObject("decoder").addProperty("latent_channels", 3));
        loadFails(d, Reason.SHAPE_MISMATCH, "the decoder takes 3-channel latents but the model makes 4 channels");

        Path up = copy(DIT, "upsampling");
        edit(up, j -> j.getAsJsonObject("decoder").addProperty("upsampling", 8));
        loadFails(up, Reason.SHAPE_MISMATCH, "but the manifest describes [1, 3, 64, 64] (out_channels, upsampling)");

        // The shipped 3-channel pixel DiT with the 4-channel decoder, its manifest claiming 3 channels.
        Path mixed = copy(TestModels.modelDir(), "mixed");
        Files.copy(DIT.resolve("decoder.pt"), mixed.resolve("decoder.pt"));
        String sha = ModelDirectory.sha256(mixed.resolve("decoder.pt"));
        long bytes = Files.size(mixed.resolve("decoder.pt"));
        edit(mixed, j -> {
            JsonObject f = new JsonObject();
            f.addProperty("path", "decoder.pt");
            f.addProperty("sha256", sha);
            f.addProperty("bytes", bytes);
            j.getAsJsonObject("files").add("decoder", f);
            JsonObject dec = JsonParser.parseString("{\"type\": \"autoencoder-kl\", \"latent_channels\": 3, "
                    + "\"out_channels\": 3, \"scale_factor\": 0.18215, \"upsampling\": 2}").getAsJsonObject();
            j.add("decoder", dec);
        });
        loadFails(mixed, Reason.SHAPE_MISMATCH, "post_quant_conv.weight is [4, 4, 1, 1]: the decoder takes 4-channel latents");

        Path noSection = copy(DIT, "nosection");
        edit(noSection, j -> j.remove("decoder"));
        loadFails(noSection, Reason.BAD_MANIFEST, "files has a \"decoder\" entry but the manifest has no decoder section");
        Path noFile = copy(DIT, "nofile");
        edit(noFile, j -> j.getAsJsonObject("files").remove("decoder"));
        loadFails(noFile, Reason.BAD_MANIFEST, "the manifest has a decoder section but files has no \"decoder\" entry");
    }

    @Test
    void aPixArtWithoutItsNullCaptionOrWithAnotherCaptionWidth() throws Exception {
        Path other = copy(PIXART, "width");
        edit(other, j -> j.getAsJsonObject("architecture").addProperty("caption_channels", 64));
        loadFails(other, Reason.SHAPE_MISMATCH, "the null caption (y_embedder.y_embedding) is float32 [8, 32] but the manifest "
                + "describes 8 tokens x 64");

        // A DiT's TorchScript file under a PixArt manifest: no cross-attention, no null caption.
        Path dit = copy(PIXART, "dit-file");
        Files.copy(DIT.resolve("dit.pt"), dit.resolve("pixart.pt"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        String sha = ModelDirectory.sha256(dit.resolve("pixart.pt"));
        long bytes = Files.size(dit.resolve("pixart.pt"));
        edit(dit, j -> {
            j.getAsJsonObject("files").getAsJsonObject("dit").addProperty("sha256", sha);
            j.getAsJsonObject("files").getAsJsonObject("dit").addProperty("bytes", bytes);
        });
        loadFails(dit, Reason.CORRUPT_FILE, "does not export method 'cross_attention'");

        Path family = copy(PIXART, "family");
        edit(family, j -> j.getAsJsonObject("architecture").addProperty("family", "sd3"));
        loadFails(family, Reason.UNSUPPORTED_VERSION, "architecture.family \"sd3\" is not supported");
    }

    // ---- text-embedding files -------------------------------------------------------------------

    @Test
    void readsTheCommittedNpzAndRejectsBadFiles() throws Exception {
        TextEmbeddings t = TextEmbeddingFiles.read(FamilyGoldenParityTest.FAMILIES.resolve("pixart-small-prompts.npz"));
        assertThat(t.size()).isEqualTo(3);
        assertThat(t.tokens()).isEqualTo(8);
        assertThat(t.width()).isEqualTo(32);
        boolean[] mask = t.mask();
        int[] real = new int[3];
        for (int r = 0; r < 3; r++) {
            for (int k = 0; k < 8; k++) {
                real[r] += mask[r * 8 + k] ? 1 : 0;
            }
        }
        assertThat(real).containsExactly(8, 5, 2);

        Path notZip = tmp.resolve("x.npz");
        Files.writeString(notZip, "hello");
        assertThatThrownBy(() -> TextEmbeddingFiles.read(notZip)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("neither a .npz archive nor a .npy array");

        Path noEmb = tmp.resolve("y.npz");
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(noEmb))) {
            z.putNextEntry(new ZipEntry("other.npy"));
            z.write(npy("<f4", new long[] {1}, new byte[4]));
        }
        assertThatThrownBy(() -> TextEmbeddingFiles.read(noEmb)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("has no array named \"embeddings\"");

        Path badMask = tmp.resolve("z.npz");
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(badMask))) {
            z.putNextEntry(new ZipEntry("embeddings.npy"));
            z.write(npy("<f4", new long[] {2, 3, 4}, new byte[2 * 3 * 4 * 4]));
            z.putNextEntry(new ZipEntry("mask.npy"));
            z.write(npy("|b1", new long[] {2, 4}, new byte[8]));
        }
        assertThatThrownBy(() -> TextEmbeddingFiles.read(badMask)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("the mask is [2, 4] but the embeddings are 2 rows of 3 tokens");

        Path emptyRow = tmp.resolve("w.npz");
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(emptyRow))) {
            z.putNextEntry(new ZipEntry("embeddings.npy"));
            z.write(npy("<f2", new long[] {1, 2, 2}, new byte[] {0, 0x3c, 0, 0x3c, 0, 0x3c, 0, 0x3c}));
            z.putNextEntry(new ZipEntry("mask.npy"));
            z.write(npy("<i8", new long[] {1, 2}, new byte[16]));
        }
        assertThatThrownBy(() -> TextEmbeddingFiles.read(emptyRow)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("row 0 of the text mask has no real token");
        assertThat(TextEmbeddingFiles.halfToFloat((short) 0x3c00)).isEqualTo(1f);
        assertThat(TextEmbeddingFiles.halfToFloat((short) 0xc000)).isEqualTo(-2f);
    }

    @Test
    void aNegativeShapeOrAStringOrObjectMaskIsNamedPlainly() throws Exception {
        Path negative = npz("neg.npz", npy("<f4", new long[] {-2, 8, 32}, new byte[0]), null);
        assertThatThrownBy(() -> TextEmbeddingFiles.read(negative)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("shape [-2, 8, 32] has a negative dimension").hasMessageNotContaining("too large");
        for (String dtype : new String[] {"<U1", "|O"}) {
            Path file = npz("mask.npz", npy("<f4", new long[] {1, 2, 2}, new byte[16]), npy(dtype, new long[] {1, 2}, new byte[8]));
            assertThatThrownBy(() -> TextEmbeddingFiles.read(file)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("mask.npy: dtype '" + dtype + "' is not supported")
                    .hasMessageNotContaining("fortran_order");
        }
    }

    private Path npz(String name, byte[] embeddings, byte[] mask) throws IOException {
        Path file = tmp.resolve(name);
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(file))) {
            z.putNextEntry(new ZipEntry("embeddings.npy"));
            z.write(embeddings);
            if (mask != null) {
                z.putNextEntry(new ZipEntry("mask.npy"));
                z.write(mask);
            }
        }
        return file;
    }

    /** A .npy file (format 1.0) of raw little-endian data. */
    private static byte[] npy(String descr, long[] shape, byte[] data) {
        StringBuilder s = new StringBuilder();
        for (long d : shape) {
            s.append(d).append(", ");
        }
        String header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + s.toString().strip() + "), }";
        int total = 10 + header.length() + 1;
        int pad = (64 - total % 64) % 64;
        header = header + " ".repeat(pad) + "\n";
        byte[] h = header.getBytes(StandardCharsets.ISO_8859_1);
        byte[] out = new byte[10 + h.length + data.length];
        byte[] magic = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (byte) (h.length & 0xff), (byte) (h.length >> 8)};
        System.arraycopy(magic, 0, out, 0, 10);
        System.arraycopy(h, 0, out, 10, h.length);
        System.arraycopy(data, 0, out, 10 + h.length, data.length);
        return out;
    }
}
