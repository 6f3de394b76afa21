package dev.fora.spark;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.djl.DiTPipeline;
import dev.fora.djl.GeneratedImages;
import dev.fora.djl.GenerationRequest;
import dev.fora.djl.Images;
import dev.fora.model.ShippedModel;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/** Spark sessions, request files and image checks shared by the tests. */
final class SparkTests {

    /** Six small requests (10 steps): three that are one `fora generate --labels 0,3,5 --seed 100` run, three mixed. */
    static final List<String> REQUESTS = List.of(
            "id,label,seed,policy,sampler,steps,cfg",
            "a0,0,100,fora:3,ddim,10,1.5",
            "a1,3,101,fora:3,ddim,10,1.5",
            "a2,5,102,fora:3,ddim,10,1.5",
            "b0,7,7,none,ddpm,10,1.0",
            "b1,9,-3,fora:2,dpm-solver++,10,2",
            "b2,1,42,,,10,");

    private SparkTests() {
    }

    /** A local session without UI and with few shuffle partitions, as the tests need. */
    static SparkSession start(String master) {
        return SparkSession.builder().master(master).appName("fora-spark-test")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "2")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .getOrCreate();
    }

    /** The shipped model's directory ({@code fora-model}, extracted to {@code fora.cache.dir}). */
    static Path model() {
        try {
            return ShippedModel.extract();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract the shipped model", e);
        }
    }

    static Path write(Path file, List<String> lines) {
        try {
            return Files.write(file, lines);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The results table of a run, by id. */
    static Map<String, Row> results(SparkSession spark, GenerateJob.Spec spec) {
        List<Row> rows = spark.read().parquet(spec.results().toString()).collectAsList();
        Map<String, Row> byId = new HashMap<>();
        for (Row r : rows) {
            assertThat(byId.put(r.getAs("id"), r)).as("one row per id: " + r.getAs("id")).isNull();
        }
        return byId;
    }

    /** The RGB pixels the job must write for a request of one image, generated here, directly. */
    static int[] expectedPixels(DiTPipeline pipeline, GenerationRequest request) {
        GeneratedImages images = pipeline.generate(request);
        long[] s = images.shape();
        return pixels(Images.toImage(images.image(0), (int) s[1], (int) s[2], (int) s[3], 1));
    }

    static int[] pixels(BufferedImage img) {
        return img.getRGB(0, 0, img.getWidth(), img.getHeight(), null, 0, img.getWidth());
    }

    static int[] pngPixels(Path png) {
        try {
            return pixels(ImageIO.read(png.toFile()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static byte[] bytes(Path file) {
        try {
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The file names in a directory, temporary files included. */
    static List<String> files(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
