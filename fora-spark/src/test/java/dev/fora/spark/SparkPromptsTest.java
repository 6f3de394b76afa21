package dev.fora.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.djl.DiTPipeline;
import dev.fora.djl.GeneratedImages;
import dev.fora.djl.GenerationRequest;
import dev.fora.djl.Images;
import dev.fora.djl.ModelLoadException;
import dev.fora.djl.TextEncoder;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Prompt rows on the small PixArt-α of fora-djl's test resources, whose directory has a T5
 * encoder and its tokenizer: the job encodes each row's prompt with the model's
 * {@link TextEncoder} and gives the images of {@code fora generate --prompt}.
 */
class SparkPromptsTest {

    static final Path PIXART = Path.of("../fora-djl/src/test/resources/families/pixart-small");

    private static SparkSession spark;
    private static DiTPipeline pipeline;
    private static TextEncoder encoder;

    @TempDir
    Path tmp;

    @BeforeAll
    static void start() throws ModelLoadException {
        spark = SparkTests.start("local[2]");
        pipeline = DiTPipeline.load(PIXART);
        encoder = TextEncoder.load(PIXART);
    }

    @AfterAll
    static void stop() {
        if (encoder != null) {
            encoder.close();
        }
        if (pipeline != null) {
            pipeline.close();
        }
        if (spark != null) {
            spark.stop();
        }
    }

    private GenerateJob.Spec spec(Path model, Path requests, String out, int partitions) {
        return new GenerateJob.Spec(ModelSource.directory(model.toString()), requests.toString(),
                RequestTable.Format.of(requests.toString()), tmp.resolve(out), partitions, 1, false);
    }

    private static int[] pixels(GeneratedImages images, int k) {
        long[] s = images.shape();
        return SparkTests.pixels(Images.toImage(images.image(k), (int) s[1], (int) s[2], (int) s[3], 1));
    }

    @Test
    void promptRowsGiveTheImagesOfGenerateWithPrompts() throws ModelLoadException {
        Path requests = SparkTests.write(tmp.resolve("prompts.csv"), List.of(
                "id,prompt,seed,policy,sampler,steps,cfg",
                "p0,a red square,100,fora:2,dpm-solver++,6,4.5",
                "p1,two cats,101,fora:2,dpm-solver++,6,4.5",
                "q1,a green lake,101,fora:2,dpm-solver++,6,4.5",
                "p2,\"a blue circle, at dusk\",7,none,ddim,4,1.0"));
        GenerateJob.Spec spec = spec(PIXART, requests, "out", 3);
        GenerateJob.Summary summary = GenerateJob.run(spark, spec);
        assertThat(summary.ok()).isEqualTo(4);
        assertThat(summary.errors()).isZero();

        // What `fora generate --model pixart-small --prompt "a red square" --prompt "two cats" --seed 100 --policy fora:2
        // --sampler dpm-solver++ --steps 6 --cfg 4.5` generates: one request of both prompts, seeds 100 and 101. Its
        // pixels are the rows' (its floats differ in the last bits: a batch of two rounds the DiT's products otherwise).
        GeneratedImages batch = pipeline.generate(GenerationRequest.builder(encoder, List.of("a red square", "two cats"))
                .seed(100).policy("fora:2").sampler("dpm-solver++").steps(6).cfgScale(4.5).build());
        for (int k = 0; k < 2; k++) {
            assertThat(SparkTests.pngPixels(spec.images().resolve("p" + k + ".png"))).as("p" + k).isEqualTo(pixels(batch, k));
        }
        // A row is `fora generate --prompt "two cats" --seed 101 ...`: a request of one image, the same PNG bytes.
        GeneratedImages single = pipeline.generate(GenerationRequest.builder(encoder, List.of("two cats")).seed(101)
                .policy("fora:2").sampler("dpm-solver++").steps(6).cfgScale(4.5).build());
        long[] s = single.shape();
        Path direct = tmp.resolve("direct-p1.png");
        ImageFiles.writePng(single.image(0), (int) s[1], (int) s[2], (int) s[3], 1, direct);
        assertThat(SparkTests.bytes(spec.images().resolve("p1.png"))).isEqualTo(SparkTests.bytes(direct));
        // the prompt matters: another prompt, same seed and settings, another image
        assertThat(SparkTests.pngPixels(spec.images().resolve("q1.png"))).isNotEqualTo(pixels(batch, 1));
        GeneratedImages p2 = pipeline.generate(GenerationRequest.builder(encoder, List.of("a blue circle, at dusk")).seed(7)
                .policy("none").sampler("ddim").steps(4).cfgScale(1.0).build());
        assertThat(SparkTests.pngPixels(spec.images().resolve("p2.png"))).isEqualTo(pixels(p2, 0));

        Map<String, Row> results = SparkTests.results(spark, spec);
        Row r = results.get("p2");
        assertThat((String) r.getAs("status")).isEqualTo(ResultTable.OK);
        assertThat((String) r.getAs("prompt")).isEqualTo("a blue circle, at dusk");
        assertThat((Integer) r.getAs("label")).isNull();
        assertThat((Long) r.getAs("seed")).isEqualTo(7L);
        assertThat((String) results.get("p0").getAs("prompt")).isEqualTo("a red square");
    }

    @Test
    void aRowWithALabelAndAPromptOrAnEmptyPromptIsARowError() throws ModelLoadException {
        Path requests = SparkTests.write(tmp.resolve("bad.csv"), List.of(
                "id,label,prompt,seed,sampler,steps",
                "both,3,a red square,5,ddim,2",
                "empty,,,5,ddim,2",
                "blank,,\"   \",5,ddim,2",
                "label-only,3,,5,ddim,2",
                "good,,two cats,5,ddim,2"));
        GenerateJob.Spec spec = spec(PIXART, requests, "out", 2);
        GenerateJob.Summary summary = GenerateJob.run(spark, spec);
        assertThat(summary.ok()).isEqualTo(1);
        assertThat(summary.errors()).isEqualTo(4);
        Map<String, Row> results = SparkTests.results(spark, spec);
        assertThat((String) results.get("both").getAs("error")).contains("a label (3) and a prompt (\"a red square\")",
                "give one of them");
        assertThat((String) results.get("empty").getAs("error")).contains("the prompt is empty", "pixart-small",
                "takes prompts (the prompt column)");
        assertThat((String) results.get("blank").getAs("error")).contains("the prompt is empty");
        assertThat((String) results.get("label-only").getAs("error")).contains("conditioned on text embeddings");
        assertThat((String) results.get("good").getAs("status")).isEqualTo(ResultTable.OK);
        assertThat(SparkTests.files(spec.images())).containsExactly("good.png");
    }

    @Test
    void aPromptColumnNeedsAModelWithATextEncoder() throws IOException {
        Path requests = SparkTests.write(tmp.resolve("prompts.csv"), List.of("id,prompt,seed", "p0,a red square,1"));
        // a class-conditioned model (the shipped one)
        GenerateJob.Spec classes = spec(SparkTests.model(), requests, "out-classes", 1);
        assertThatThrownBy(() -> GenerateJob.run(spark, classes)).isInstanceOf(RequestTableException.class)
                .hasMessageContaining("has a prompt column but model dit-patterns has no text encoder");
        assertThat(classes.results()).doesNotExist();

        // a PixArt-α directory without its text encoder (given embeddings, it needs none)
        Path bare = Files.createDirectories(tmp.resolve("pixart-without-t5"));
        for (String f : List.of("pixart.pt", "decoder.pt")) {
            Files.copy(PIXART.resolve(f), bare.resolve(f));
        }
        JsonObject manifest = JsonParser.parseString(Files.readString(PIXART.resolve("manifest.json"))).getAsJsonObject();
        for (String role : List.of("text_encoder", "tokenizer", "spiece")) {
            manifest.getAsJsonObject("files").remove(role);
        }
        manifest.remove("text_encoder");
        Files.writeString(bare.resolve("manifest.json"), new GsonBuilder().setPrettyPrinting().create().toJson(manifest),
                StandardCharsets.UTF_8);
        GenerateJob.Spec noEncoder = spec(bare, requests, "out-bare", 1);
        assertThatThrownBy(() -> GenerateJob.run(spark, noEncoder)).isInstanceOf(RequestTableException.class)
                .hasMessageContaining("has a prompt column but model pixart-small has no text encoder")
                .hasMessageContaining("fora_tools.export_t5");
        assertThat(noEncoder.results()).doesNotExist();
    }
}
