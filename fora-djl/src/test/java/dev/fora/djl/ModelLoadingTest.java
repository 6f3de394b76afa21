package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDManager;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.djl.ModelLoadException.Reason;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/** Missing, corrupt and mismatched model directories fail with a typed error naming the file, leaking nothing. */
class ModelLoadingTest {

    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().create();

    @TempDir
    Path tmp;

    /** A copy of the test model directory. */
    private Path copy() throws IOException {
        Path src = TestModels.modelDir();
        Path dst = tmp.resolve("model");
        Files.createDirectories(dst);
        try (var files = Files.list(src)) {
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

    private static int liveArrays() {
        try (NDManager probe = NDManager.newBaseManager()) {
            return probe.getParentManager().getManagedArrays().size();
        }
    }

    private static void assertLoadFails(Path dir, Reason reason, String fileName, String messagePart) {
        int before = liveArrays();
        ThrowingCallable load = () -> DiTPipeline.load(dir).close();
        assertThatThrownBy(load)
                .isInstanceOfSatisfying(ModelLoadException.class, e -> {
                    assertThat(e.reason()).isEqualTo(reason);
                    assertThat(e.file().getFileName().toString()).isEqualTo(fileName);
                })
                .hasMessageContaining(messagePart);
        assertThat(liveArrays()).as("arrays alive after the failed load").isEqualTo(before);
    }

    @Test
    void loadsTheModel() throws Exception {
        ModelManifest original = ModelDirectory.open(TestModels.modelDir()).manifest();
        try (DiTPipeline p = DiTPipeline.load(copy())) {
            assertThat(p.config()).isEqualTo(original.config());
            assertThat(p.config().tokens()).isEqualTo((p.config().inputSize() / p.config().patchSize())
                    * (p.config().inputSize() / p.config().patchSize()));
            assertThat(p.manifest().formatVersion()).isEqualTo(ModelManifest.FORMAT_VERSION);
            assertThat(p.classifier().isPresent()).isEqualTo(original.hasClassifier());
        }
    }

    @Test
    void missingDirectory() {
        assertLoadFails(tmp.resolve("nowhere"), Reason.MISSING_FILE, "nowhere", "does not exist");
    }

    @Test
    void missingManifest() throws Exception {
        Path dir = copy();
        Files.delete(dir.resolve(ModelManifest.FILE_NAME));
        assertLoadFails(dir, Reason.MISSING_FILE, "manifest.json", "no manifest");
    }

    @Test
    void missingTorchScriptFile() throws Exception {
        Path dir = copy();
        Files.delete(dir.resolve("dit.pt"));
        assertLoadFails(dir, Reason.MISSING_FILE, "dit.pt", "does not exist");
    }

    @Test
    void corruptTorchScriptFile() throws Exception {
        Path dir = copy();
        Path dit = dir.resolve("dit.pt");
        byte[] bytes = Files.readAllBytes(dit);
        bytes[bytes.length / 2] ^= 0x5a;
        Files.delete(dit);
        Files.write(dit, bytes);
        assertLoadFails(dir, Reason.CORRUPT_FILE, "dit.pt", "SHA-256");
    }

    @Test
    void truncatedTorchScriptFile() throws Exception {
        Path dir = copy();
        Path dit = dir.resolve("dit.pt");
        byte[] bytes = Files.readAllBytes(dit);
        Files.delete(dit);
        Files.write(dit, java.util.Arrays.copyOf(bytes, bytes.length - 100));
        assertLoadFails(dir, Reason.CORRUPT_FILE, "dit.pt", "bytes but the manifest says");
    }

    @Test
    void fileWithMatchingDigestThatIsNotTorchScript() throws Exception {
        Path dir = copy();
        Path dit = dir.resolve("dit.pt");
        Files.delete(dit);
        Files.writeString(dit, "not a TorchScript archive");
        String sha = ModelDirectory.sha256(dit);
        long size = Files.size(dit);
        Path fixed = dir.resolve(ModelManifest.FILE_NAME);
        JsonObject json = JsonParser.parseString(Files.readString(fixed)).getAsJsonObject();
        JsonObject entry = json.getAsJsonObject("files").getAsJsonObject("dit");
        entry.addProperty("sha256", sha);
        entry.addProperty("bytes", size);
        Files.writeString(fixed, GSON.toJson(json));
        assertLoadFails(dir, Reason.CORRUPT_FILE, "dit.pt", "not a loadable TorchScript module");
    }

    @Test
    void unknownFormatVersion() throws Exception {
        assertLoadFails(withManifest(j -> j.addProperty("format_version", 4)), Reason.UNSUPPORTED_VERSION,
                "manifest.json", "format_version 4 is not supported");
    }

    @Test
    void unknownFormat() throws Exception {
        assertLoadFails(withManifest(j -> j.addProperty("format", "something-else")), Reason.UNSUPPORTED_VERSION,
                "manifest.json", "something-else");
    }

    @Test
    void manifestThatIsNotJson() throws Exception {
        Path dir = copy();
        Files.writeString(dir.resolve(ModelManifest.FILE_NAME), "{\"format\": \"fora4j-dit\", ");
        assertLoadFails(dir, Reason.BAD_MANIFEST, "manifest.json", "not valid JSON");
    }

    @Test
    void manifestWithoutArchitectureField() throws Exception {
        assertLoadFails(withManifest(j -> j.getAsJsonObject("architecture").remove("hidden_size")), Reason.BAD_MANIFEST,
                "manifest.json", "missing field \"hidden_size\"");
    }

    @Test
    void manifestBetasOtherThanDiTsDefaultAreUsed() throws Exception {
        // Used to be rejected as BAD_MANIFEST; the schedule now comes from the manifest's betas.
        Path dir = withManifest(j -> {
            JsonObject d = j.getAsJsonObject("diffusion");
            d.addProperty("beta_start", 2e-4);
            d.addProperty("beta_end", 0.03);
        });
        DiTPipeline shipped = TestModels.pipeline();
        int trainSteps = shipped.manifest().diffusion().trainSteps();
        GenerationRequest request = GenerationRequest.builder(1, 4).steps(5).seed(3).build();
        try (DiTPipeline p = DiTPipeline.load(dir)) {
            assertThat(p.manifest().diffusion().betaStart()).isEqualTo(2e-4);
            assertThat(p.manifest().diffusion().betaEnd()).isEqualTo(0.03);
            assertThat(p.trainingSchedule().betas())
                    .containsExactly(dev.fora.core.sampling.DiffusionSchedule.linear(trainSteps, 2e-4, 0.03).betas());
            assertThat(p.schedule(5).betas())
                    .containsExactly(dev.fora.core.sampling.DiffusionSchedule.linear(trainSteps, 2e-4, 0.03).respace(5).betas())
                    .isNotEqualTo(shipped.schedule(5).betas());
            // the sampler runs on that schedule: same weights, seed and request, different images
            float[] other = p.generate(request).image(0);
            assertThat(shipped.generate(request).image(0)).isNotEqualTo(other);
        }
        // the shipped manifest's betas are DiT's defaults
        assertThat(shipped.schedule(50).betas())
                .containsExactly(dev.fora.core.sampling.DiffusionSchedule.linear(1000).respace(50).betas());
    }

    @Test
    void unknownBetaScheduleIsStillRejected() throws Exception {
        assertLoadFails(withManifest(j -> j.getAsJsonObject("diffusion").addProperty("beta_schedule", "cosine")),
                Reason.BAD_MANIFEST, "manifest.json", "beta_schedule \"cosine\" is not supported");
    }

    @Test
    void manifestBetasThatAreNotAScheduleAreRejected() throws Exception {
        assertLoadFails(withManifest(j -> j.getAsJsonObject("diffusion").addProperty("beta_end", 1.5)),
                Reason.BAD_MANIFEST, "manifest.json", "are not a linear schedule");
    }

    @Test
    void manifestBetasInTheWrongOrderAreRejected() throws Exception {
        assertLoadFails(withManifest(j -> {
            JsonObject d = j.getAsJsonObject("diffusion");
            d.addProperty("beta_start", 0.02);
            d.addProperty("beta_end", 1e-4);
        }), Reason.BAD_MANIFEST, "manifest.json", "0 < betaStart <= betaEnd");
    }

    @Test
    void manifestWithInconsistentSizes() throws Exception {
        assertLoadFails(withManifest(j -> j.getAsJsonObject("architecture").addProperty("tokens", 65)),
                Reason.SHAPE_MISMATCH, "manifest.json", "tokens");
    }

    @Test
    void manifestThatDoesNotDescribeTheModule() throws Exception {
        // Consistent on paper (32x32 input and the tokens that gives) but not what dit.pt computes.
        Path dir = withManifest(j -> {
            JsonObject arch = j.getAsJsonObject("architecture");
            int side = 32 / arch.get("patch_size").getAsInt();
            arch.addProperty("input_size", 32);
            arch.addProperty("tokens", side * side);
        });
        assertLoadFails(dir, Reason.SHAPE_MISMATCH, "dit.pt", "does not match the manifest");
    }

    @ParameterizedTest
    @ValueSource(ints = {9, 11})
    void numClassesThatDisagreeWithTheWeights(int numClasses) throws Exception {
        // consistent on paper (null class and names follow) but the weights have 10 classes + the null class
        Path dir = withManifest(j -> {
            j.getAsJsonObject("architecture").addProperty("num_classes", numClasses);
            j.getAsJsonObject("diffusion").addProperty("null_class", numClasses);
            JsonArray names = new JsonArray();
            for (int i = 0; i < numClasses; i++) {
                names.add("class " + i);
            }
            j.add("classes", names);
            j.getAsJsonObject("files").remove("classifier");
        });
        assertLoadFails(dir, Reason.SHAPE_MISMATCH, "dit.pt", "num_classes " + numClasses
                + " in the manifest does not match the weights' class table");
    }
}
