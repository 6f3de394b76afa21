package dev.fora.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.examples.Main;
import java.awt.image.BufferedImage;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** Each command end to end, in process, on the shipped model (or its random stand-in), with few steps. */
class CommandsTest {

    @TempDir
    Path tmp;

    /** Exit code, stdout and stderr of one run. */
    record Result(int exitCode, String out, String err) {
    }

    static Result run(String... args) {
        CommandLine cl = Main.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(args);
        return new Result(code, out.toString(), err.toString());
    }

    /** Runs the command and checks that it succeeded (stderr shown if not). */
    static Result ok(String... args) {
        Result r = run(args);
        assertThat(r.exitCode()).as(r.err()).isZero();
        return r;
    }

    static String[] args(Object... parts) {
        List<String> out = new ArrayList<>();
        for (Object p : parts) {
            out.add(p.toString());
        }
        return out.toArray(new String[0]);
    }

    @Test
    void generateWritesAGridAndJson() throws Exception {
        Path model = TestModels.model();
        Path png = tmp.resolve("g.png");
        Path json = tmp.resolve("g.json");
        Result r = ok(args("generate", "--model", model, "--labels", "0,3", "--per-class", 2, "--steps", 6,
                "--policy", "fora:2", "--out", png, "--json", json, "--quiet"));
        assertThat(r.out()).contains("wall time", "compute fraction", "FLOP-bound speedup");

        BufferedImage img = ImageIO.read(png.toFile());
        // 16x16 images scaled 4x, 2 px separators; rows = classes, columns = samples (+ a label column)
        assertThat(img.getHeight()).isEqualTo(2 * 64 + 3 * 2);
        List<String> classes = dev.fora.djl.ModelManifest.read(model.resolve("manifest.json")).classes();
        List<String> rowLabels = List.of(classes.isEmpty() ? "0" : "0 " + classes.get(0),
                classes.isEmpty() ? "3" : "3 " + classes.get(3));
        assertThat(img.getWidth()).isEqualTo(new dev.fora.examples.image.ImageGrid(4, 2).labelWidth(rowLabels)
                + 2 * 64 + 3 * 2);

        JsonObject o = JsonParser.parseString(Files.readString(json)).getAsJsonObject();
        assertThat(o.get("policy").getAsString()).isEqualTo("fora:2");
        assertThat(o.get("images").getAsInt()).isEqualTo(4);
        // K = 6, N = 2: loop index i = 5..0; full steps at i = 5 (first), 4, 2, 0 -> 4 of 6
        assertThat(o.get("compute_fraction").getAsDouble()).isCloseTo(4.0 / 6, org.assertj.core.api.Assertions.within(1e-9));
        assertThat(o.get("flop_speedup").getAsDouble()).isCloseTo(1.5, org.assertj.core.api.Assertions.within(1e-9));
        assertThat(o.get("cache_bytes_peak").getAsLong()).isPositive();
    }

    @Test
    void compareWritesTheTableGridAndOneObjectPerPolicy() throws Exception {
        Path model = TestModels.model();
        Path png = tmp.resolve("c.png");
        Path json = tmp.resolve("c.json");
        Result r = ok(args("compare", "--model", model, "--labels", "1,2", "--per-class", 2, "--steps", 6,
                "--policy", "fora:2", "--policy", "fora:3,warmup:2,fora:3", "--out", png, "--json", json, "--quiet",
                "--warmup", 0, "--repeats", 2));
        assertThat(r.out()).contains("| none", "| fora:2", "| fora:3", "| warmup:2,fora:3", "PSNR dB", "SSIM");

        BufferedImage img = ImageIO.read(png.toFile());
        assertThat(img.getHeight()).isEqualTo(4 * 64 + 5 * 2); // rows: none + 3 policies
        int labelWidth = new dev.fora.examples.image.ImageGrid(4, 2).labelWidth(
                List.of("none", "fora:2", "fora:3", "warmup:2,fora:3"));
        assertThat(img.getWidth()).isEqualTo(labelWidth + 4 * 64 + 5 * 2); // 4 samples

        JsonArray a = JsonParser.parseString(Files.readString(json)).getAsJsonArray();
        assertThat(a).hasSize(4);
        for (JsonElement e : a) {
            JsonObject o = e.getAsJsonObject();
            assertThat(o.keySet()).contains("policy", "sampler", "steps", "images", "compute_fraction", "flop_speedup",
                    "measured_speedup", "psnr_db", "ssim", "class_accuracy", "frechet_distance", "cache_bytes_peak");
            assertThat(o.getAsJsonObject("host").get("malloc").getAsString()).isEqualTo(Host.describe().get("malloc"));
            assertThat(o.get("sampler").getAsString()).isEqualTo("ddim");
            assertThat(o.get("steps").getAsInt()).isEqualTo(6);
            assertThat(o.get("images").getAsInt()).isEqualTo(4);
            assertThat(o.get("repeats").getAsInt()).isEqualTo(2);
            assertThat(o.get("measured_speedup").getAsDouble()).isPositive();
            assertThat(o.get("class_accuracy").getAsDouble()).isBetween(0.0, 1.0);
            assertThat(o.get("frechet_distance").getAsDouble()).isGreaterThanOrEqualTo(0.0);
        }
        JsonObject none = a.get(0).getAsJsonObject();
        assertThat(none.get("policy").getAsString()).isEqualTo("none");
        assertThat(none.get("psnr_db").isJsonNull()).isTrue(); // identical images: infinite PSNR
        assertThat(none.get("ssim").getAsDouble()).isEqualTo(1.0);
        assertThat(none.get("compute_fraction").getAsDouble()).isEqualTo(1.0);
        assertThat(none.get("cache_bytes_peak").getAsLong()).isZero();
        JsonObject fora2 = a.get(1).getAsJsonObject();
        assertThat(fora2.get("psnr_db").getAsDouble()).isPositive();
        assertThat(fora2.get("ssim").getAsDouble()).isLessThanOrEqualTo(1.0);
        assertThat(fora2.get("compute_fraction").getAsDouble()).isLessThan(1.0);
    }

    @Test
    void benchReportsMediansSpeedupsAndComponentOverhead() throws Exception {
        Path model = TestModels.model();
        Path json = tmp.resolve("b.json");
        Result r = ok(args("bench", "--model", model, "--steps", 4, "--batch", 2, "--repeats", 2, "--warmup", 0,
                "--policy", "fora:2", "--json", json, "--quiet"));
        assertThat(r.out()).contains("whole-model forward", "component overhead", "max |diff|");
        JsonArray a = JsonParser.parseString(Files.readString(json)).getAsJsonArray();
        assertThat(a).hasSize(2);
        JsonObject o = a.get(1).getAsJsonObject();
        assertThat(o.keySet()).contains("model", "policy", "steps", "batch", "ms_per_image_uncached", "ms_per_image_cached",
                "measured_speedup", "flop_speedup", "component_overhead");
        assertThat(o.get("policy").getAsString()).isEqualTo("fora:2");
        assertThat(o.get("steps").getAsInt()).isEqualTo(4);
        assertThat(o.get("batch").getAsInt()).isEqualTo(2);
        assertThat(o.get("ms_per_image_cached").getAsDouble()).isPositive();
        assertThat(o.get("component_overhead").getAsDouble()).isPositive();
        // the component path computes what the whole-model forward computes
        assertThat(o.get("max_abs_diff_components_vs_whole_model").getAsDouble()).isLessThan(1e-3);
    }

    @Test
    void soakRunsTheGenerationsAndSamplesTheMemory() throws Exception {
        Path json = tmp.resolve("s.json");
        Result r = ok(args("soak", "--model", TestModels.model(), "--count", 20, "--every", 10, "--steps", 3,
                "--json", json, "--quiet"));
        assertThat(r.out()).contains("20 generations of 1 image(s)", "RSS MiB", "native arrays", "RSS first ");
        // a row before the first generation, after 10 and after 20
        assertThat(r.out().lines().filter(l -> l.matches("\\|\\s*(0|10|20)\\s+\\|.*"))).hasSize(3);
        JsonObject o = JsonParser.parseString(Files.readString(json)).getAsJsonObject();
        assertThat(o.get("count").getAsInt()).isEqualTo(20);
        JsonArray samples = o.getAsJsonArray("samples");
        assertThat(samples).hasSize(3);
        assertThat(samples.get(2).getAsJsonObject().get("generations").getAsInt()).isEqualTo(20);
        for (JsonElement s : samples) {
            assertThat(s.getAsJsonObject().get("rss_bytes").getAsLong()).isPositive();
        }
        // nothing is left under the model between generations
        assertThat(samples.get(2).getAsJsonObject().get("native_arrays").getAsInt())
                .isEqualTo(samples.get(0).getAsJsonObject().get("native_arrays").getAsInt());
        assertThat(o.get("rss_max_bytes").getAsLong()).isGreaterThanOrEqualTo(o.get("rss_last_bytes").getAsLong());
    }

    @Test
    void usesTheShippedModelByDefault() throws Exception {
        Path cache = tmp.resolve("cache");
        String old = System.getProperty("fora.cache.dir");
        System.setProperty("fora.cache.dir", cache.toString());
        try {
            Path png = tmp.resolve("default.png");
            Result r = ok(args("generate", "--labels", "0", "--steps", 3, "--out", png, "--quiet"));
            assertThat(r.out()).contains(cache.resolve("models").toString());
            assertThat(ImageIO.read(png.toFile())).isNotNull();
            // second run reuses the extracted copy
            assertThat(run(args("generate", "--labels", "1", "--steps", 2, "--out", png, "--quiet")).exitCode()).isZero();
            try (var dirs = Files.list(cache.resolve("models"))) {
                assertThat(dirs.count()).isEqualTo(1);
            }
        } finally {
            if (old == null) {
                System.clearProperty("fora.cache.dir");
            } else {
                System.setProperty("fora.cache.dir", old);
            }
        }
    }

    @Test
    void helpListsTheCommands() {
        Result r = run("--help");
        assertThat(r.exitCode()).isZero();
        assertThat(r.out()).contains("generate", "compare", "bench", "soak", "calibrate", "record", "replay");
        for (String cmd : new String[] {"generate", "compare", "bench", "soak"}) {
            Result h = run(cmd, "--help");
            assertThat(h.exitCode()).isZero();
            assertThat(h.out()).contains("--model", "--policy");
        }
    }

    @Test
    void theGridIsTheSameWhateverTheBatchSize() throws Exception {
        Path model = TestModels.model();
        int[][] pixels = new int[2][];
        int k = 0;
        for (int batch : new int[] {1, 7}) {
            Path png = tmp.resolve("batch" + batch + ".png");
            ok(args("generate", "--model", model, "--labels", "0,3,5", "--per-class", 3, "--steps", 10, "--policy", "fora:3",
                    "--batch", batch, "--seed", 7, "--out", png, "--quiet"));
            BufferedImage img = ImageIO.read(png.toFile());
            pixels[k++] = img.getRGB(0, 0, img.getWidth(), img.getHeight(), null, 0, img.getWidth());
        }
        assertThat(pixels[1]).hasSameSizeAs(pixels[0]);
        int worst = 0;
        int differing = 0;
        for (int i = 0; i < pixels[0].length; i++) {
            for (int shift = 0; shift < 24; shift += 8) {
                int d = Math.abs((pixels[0][i] >> shift & 0xff) - (pixels[1][i] >> shift & 0xff));
                worst = Math.max(worst, d);
                differing += d > 0 ? 1 : 0;
            }
        }
        System.out.printf("generate --batch 1 vs --batch 7: %d channel values differ, by at most %d/255%n", differing, worst);
        // equal, or 1/255 apart where libtorch's batched arithmetic rounds a value across a pixel boundary
        assertThat(worst).isLessThanOrEqualTo(1);
    }
}
