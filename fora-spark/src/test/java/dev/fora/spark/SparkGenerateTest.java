package dev.fora.spark;

import static dev.fora.spark.SparkTests.REQUESTS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.fora.djl.DiTPipeline;
import dev.fora.djl.GeneratedImages;
import dev.fora.djl.GenerationRequest;
import dev.fora.djl.Images;
import dev.fora.djl.ModelDirectory;
import dev.fora.djl.ModelLoadException;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The job in Spark local mode with two task threads, on the shipped model. */
class SparkGenerateTest {

    /** The requests of {@link SparkTests#REQUESTS} as the library's requests of one image. */
    private static final Map<String, GenerationRequest> DIRECT = new LinkedHashMap<>();

    static {
        DIRECT.put("a0", GenerationRequest.builder(0).seed(100).policy("fora:3").sampler("ddim").steps(10).cfgScale(1.5).build());
        DIRECT.put("a1", GenerationRequest.builder(3).seed(101).policy("fora:3").sampler("ddim").steps(10).cfgScale(1.5).build());
        DIRECT.put("a2", GenerationRequest.builder(5).seed(102).policy("fora:3").sampler("ddim").steps(10).cfgScale(1.5).build());
        DIRECT.put("b0", GenerationRequest.builder(7).seed(7).policy("none").sampler("ddpm").steps(10).cfgScale(1.0).build());
        DIRECT.put("b1", GenerationRequest.builder(9).seed(-3).policy("fora:2").sampler("dpm-solver++").steps(10).cfgScale(2)
                .build());
        // empty policy, sampler and cfg: the defaults of fora generate
        DIRECT.put("b2", GenerationRequest.builder(1).seed(42).policy("fora:3").sampler("ddim").steps(10).cfgScale(1.5).build());
    }

    private static SparkSession spark;
    private static DiTPipeline pipeline;
    private static final Map<String, int[]> EXPECTED = new LinkedHashMap<>();
    private static final Map<String, GeneratedImages> EXPECTED_STATS = new LinkedHashMap<>();

    @TempDir
    Path tmp;

    @BeforeAll
    static void start() throws ModelLoadException {
        spark = SparkTests.start("local[2]");
        pipeline = DiTPipeline.load(SparkTests.model());
        for (Map.Entry<String, GenerationRequest> e : DIRECT.entrySet()) {
            EXPECTED.put(e.getKey(), SparkTests.expectedPixels(pipeline, e.getValue()));
            EXPECTED_STATS.put(e.getKey(), pipeline.generate(e.getValue()));
        }
    }

    @AfterAll
    static void stop() {
        if (pipeline != null) {
            pipeline.close();
        }
        if (spark != null) {
            spark.stop();
        }
    }

    private GenerateJob.Spec spec(ModelSource model, Path requests, String out, int partitions) {
        return new GenerateJob.Spec(model, requests.toString(), RequestTable.Format.of(requests.toString()), tmp.resolve(out),
                partitions, 1, false);
    }

    private GenerateJob.Spec spec(Path requests, String out, int partitions) {
        return spec(ModelSource.directory(SparkTests.model().toString()), requests, out, partitions);
    }

    private void assertImagesAreTheDirectOnes(GenerateJob.Spec spec) {
        Map<String, Row> results = SparkTests.results(spark, spec);
        assertThat(results.keySet()).containsExactlyInAnyOrderElementsOf(DIRECT.keySet());
        for (String id : DIRECT.keySet()) {
            Row r = results.get(id);
            assertThat((String) r.getAs("status")).as(id + ": " + r.getAs("error")).isEqualTo(ResultTable.OK);
            Path png = spec.images().resolve(id + ".png");
            assertThat((String) r.getAs("output")).isEqualTo(png.toString());
            assertThat(SparkTests.pngPixels(png)).as(id).isEqualTo(EXPECTED.get(id));
        }
        assertThat(SparkTests.files(spec.images())).as("no temporary files left")
                .containsExactlyInAnyOrderElementsOf(DIRECT.keySet().stream().map(id -> id + ".png").toList());
    }

    @Test
    void theImagesAreTheSingleMachineOnesWhateverThePartitioning() throws ModelLoadException {
        Path requests = SparkTests.write(tmp.resolve("requests.csv"), REQUESTS);
        List<GenerateJob.Spec> runs = new ArrayList<>();
        for (int partitions : new int[] {1, 3, 7}) {
            GenerateJob.Spec spec = spec(requests, "out" + partitions, partitions);
            GenerateJob.Summary summary = GenerateJob.run(spark, spec);
            assertThat(summary.ok()).isEqualTo(6);
            assertThat(summary.errors()).isZero();
            assertThat(summary.partitions()).isEqualTo(partitions);
            assertImagesAreTheDirectOnes(spec);
            runs.add(spec);
        }
        for (String id : DIRECT.keySet()) {
            byte[] one = SparkTests.bytes(runs.get(0).images().resolve(id + ".png"));
            for (GenerateJob.Spec other : runs.subList(1, runs.size())) {
                assertThat(SparkTests.bytes(other.images().resolve(id + ".png"))).as(id).isEqualTo(one);
            }
        }
        // a0..a2 are the images of `fora generate --labels 0,3,5 --seed 100 --steps 10`: one batch, seeds 100..102
        GeneratedImages batch = pipeline.generate(GenerationRequest.builder(0, 3, 5).seed(100).policy("fora:3").sampler("ddim")
                .steps(10).cfgScale(1.5).build());
        for (int k = 0; k < 3; k++) {
            assertThat(SparkTests.pixels(Images.toImage(batch.image(k), 3, 16, 16, 1))).as("a" + k)
                    .isEqualTo(SparkTests.pngPixels(runs.get(0).images().resolve("a" + k + ".png")));
        }
        Map<String, Row> results = SparkTests.results(spark, runs.get(0));
        for (String id : DIRECT.keySet()) {
            Row r = results.get(id);
            GenerationRequest g = DIRECT.get(id);
            var stats = EXPECTED_STATS.get(id).stats();
            assertThat((Integer) r.getAs("label")).isEqualTo(((dev.fora.core.model.ClassLabels) g.conditioning()).label(0));
            assertThat((Long) r.getAs("seed")).isEqualTo(g.seed());
            assertThat((String) r.getAs("sampler")).isEqualTo(g.sampler().id());
            assertThat((Integer) r.getAs("steps")).isEqualTo(10);
            assertThat((Double) r.getAs("cfg")).isEqualTo(g.cfgScale());
            assertThat((Double) r.getAs("compute_fraction")).isCloseTo(stats.computeFraction(), within(1e-12));
            assertThat((Double) r.getAs("flop_speedup")).isCloseTo(stats.flopSpeedup(), within(1e-12));
            assertThat((Long) r.getAs("cache_peak_bytes")).isEqualTo(stats.peakCacheBytes());
            assertThat((Double) r.getAs("wall_ms")).isPositive();
        }
        assertThat((String) results.get("b2").getAs("policy")).isEqualTo("fora:3");
        assertThat((Double) results.get("a0").getAs("compute_fraction")).isCloseTo(0.4, within(1e-12)); // 4 of 10 steps
        assertThat((Long) results.get("b0").getAs("cache_peak_bytes")).isZero();
    }

    @Test
    void jsonAndParquetRequestsGiveTheSameImages() throws ModelLoadException {
        List<String> json = new ArrayList<>();
        StructType schema = new StructType().add("ID", DataTypes.StringType).add("label", DataTypes.IntegerType)
                .add("seed", DataTypes.LongType).add("policy", DataTypes.StringType).add("sampler", DataTypes.StringType)
                .add("steps", DataTypes.IntegerType).add("cfg", DataTypes.DoubleType);
        List<Row> rows = new ArrayList<>();
        for (String line : REQUESTS.subList(1, REQUESTS.size())) {
            String[] v = line.split(",", -1);
            json.add(String.format("{\"id\": \"%s\", \"label\": %s, \"seed\": %s, \"policy\": %s, \"sampler\": %s, \"steps\": %s%s}",
                    v[0], v[1], v[2], v[3].isEmpty() ? "null" : "\"" + v[3] + "\"", v[4].isEmpty() ? "null" : "\"" + v[4] + "\"",
                    v[5], v[6].isEmpty() ? "" : ", \"cfg\": " + v[6]));
            rows.add(RowFactory.create(v[0], Integer.valueOf(v[1]), Long.valueOf(v[2]), v[3].isEmpty() ? null : v[3],
                    v[4].isEmpty() ? null : v[4], Integer.valueOf(v[5]), v[6].isEmpty() ? null : Double.valueOf(v[6])));
        }
        Path jsonFile = SparkTests.write(tmp.resolve("requests.jsonl"), json);
        Path parquet = tmp.resolve("requests.parquet");
        spark.createDataFrame(rows, schema).write().parquet(parquet.toString());

        for (Path requests : List.of(jsonFile, parquet)) {
            GenerateJob.Spec spec = spec(requests, "out-" + requests.getFileName(), 0);
            GenerateJob.Summary summary = GenerateJob.run(spark, spec);
            assertThat(summary.ok()).as(requests.toString()).isEqualTo(6);
            assertThat(summary.partitions()).isEqualTo(8); // 4 per core
            assertImagesAreTheDirectOnes(spec);
        }
    }

    @Test
    void seedsAreExact64BitIntegersAndAFractionOrAnInexactDoubleIsARowError() throws ModelLoadException {
        Path json = SparkTests.write(tmp.resolve("seeds.jsonl"), List.of(
                "{\"id\": \"big\", \"label\": 1, \"seed\": 9007199254740993, \"steps\": 2}",
                "{\"id\": \"long\", \"label\": 2, \"seed\": 123456789012345678, \"steps\": 2}",
                "{\"id\": \"half\", \"label\": 3, \"seed\": 1.5, \"steps\": 2}"));
        GenerateJob.Spec spec = spec(json, "out-json", 1);
        GenerateJob.Summary summary = GenerateJob.run(spark, spec);
        assertThat(summary.ok()).isEqualTo(2);
        Map<String, Row> results = SparkTests.results(spark, spec);
        assertThat((Long) results.get("big").getAs("seed")).isEqualTo(9007199254740993L);
        assertThat((Long) results.get("long").getAs("seed")).isEqualTo(123456789012345678L);
        assertThat((String) results.get("half").getAs("error")).contains("seed \"1.5\" is not an integer");

        // A floating-point column holds integers exactly only below 2^53.
        StructType schema = new StructType().add("id", DataTypes.StringType).add("label", DataTypes.IntegerType)
                .add("seed", DataTypes.DoubleType).add("steps", DataTypes.IntegerType);
        Path parquet = tmp.resolve("seeds.parquet");
        spark.createDataFrame(List.of(RowFactory.create("inexact", 1, 0x1p53, 2), RowFactory.create("exact", 2, 0x1p53 - 1, 2)),
                schema).write().parquet(parquet.toString());
        GenerateJob.Spec doubles = spec(parquet, "out-parquet", 1);
        assertThat(GenerateJob.run(spark, doubles).ok()).isEqualTo(1);
        Map<String, Row> rows = SparkTests.results(spark, doubles);
        assertThat((String) rows.get("inexact").getAs("error")).contains("beyond 2^53 is not exact");
        assertThat((Long) rows.get("exact").getAs("seed")).isEqualTo((1L << 53) - 1);
    }

    @Test
    void badRowsAreReportedAndTheOthersComplete() throws ModelLoadException {
        Path requests = SparkTests.write(tmp.resolve("bad.csv"), List.of(
                "id,label,embeddings,seed,policy,sampler,steps,cfg",
                "good,4,,5,fora:2,ddim,10,1.5",
                "whole,4.0,,5,fora:2,ddim,10.0,1.5",
                "huge-steps,4,,5,fora:2,ddim,3000000000,1.5",
                "bad-policy,4,,5,fora:x,ddim,10,1.5",
                "bad-label,12,,5,fora:2,ddim,10,1.5",
                "text,,prompts/cat.safetensors,5,fora:2,ddim,10,1.5",
                "no-label,,,5,fora:2,ddim,10,1.5",
                "../up,4,,5,fora:2,ddim,10,1.5",
                "dup,4,,5,fora:2,ddim,10,1.5",
                "dup,4,,6,fora:2,ddim,10,1.5",
                "bad-steps,4,,5,fora:2,ddim,ten,1.5",
                "bad-sampler,4,,5,fora:2,euler,10,1.5",
                "short-mask,4,,5,mask:101,ddim,10,1.5",
                "no-seed,4,,,fora:2,ddim,10,1.5",
                "bad-cfg,4,,5,fora:2,ddim,10,-1"));
        GenerateJob.Spec spec = spec(requests, "out", 3);
        GenerateJob.Summary summary = GenerateJob.run(spark, spec);
        assertThat(summary.ok()).isEqualTo(2);
        assertThat(summary.errors()).isEqualTo(13);

        List<Row> rows = spark.read().parquet(spec.results().toString()).collectAsList();
        Map<String, List<String>> errors = new LinkedHashMap<>();
        for (Row r : rows) {
            errors.computeIfAbsent(r.getAs("id"), k -> new ArrayList<>()).add(r.getAs("error"));
        }
        assertThat(errors.get("good")).containsExactly((String) null);
        assertThat(errors.get("whole")).as("integers written as whole decimals").containsExactly((String) null);
        assertThat(errors.get("huge-steps").get(0)).contains("steps 3000000000 is out of range");
        assertThat(errors.get("bad-policy").get(0)).contains("fora:x", "positive integer");
        assertThat(errors.get("bad-label").get(0)).contains("label 12", "out of range", "10 classes");
        assertThat(errors.get("text").get(0)).contains("text embeddings", "prompts/cat.safetensors", "not supported",
                "class labels 0..9");
        assertThat(errors.get("no-label").get(0)).contains("label is empty");
        assertThat(errors.get("../up").get(0)).contains("cannot name a file");
        assertThat(errors.get("dup")).hasSize(2).allSatisfy(e -> assertThat(e).contains("appears 2 times"));
        assertThat(errors.get("bad-steps").get(0)).contains("steps \"ten\" is not an integer");
        assertThat(errors.get("bad-sampler").get(0)).contains("unknown sampler \"euler\"");
        assertThat(errors.get("short-mask").get(0)).contains("step mask has 3 entries");
        assertThat(errors.get("no-seed").get(0)).contains("seed is empty");
        assertThat(errors.get("bad-cfg").get(0)).contains("cfgScale must be finite and >= 0");
        for (Row r : rows) {
            if (ResultTable.ERROR.equals(r.getAs("status"))) {
                assertThat((String) r.getAs("output")).isNull();
                assertThat((Double) r.getAs("compute_fraction")).isNull();
            }
        }
        assertThat(SparkTests.files(spec.images())).containsExactly("good.png", "whole.png");
        assertThat(SparkTests.bytes(spec.images().resolve("whole.png"))).isEqualTo(SparkTests.bytes(spec.images().resolve("good.png")));
        assertThat(tmp.resolve("out/up.png")).doesNotExist();
    }

    @Test
    void aMissingModelFailsTheJobAtOnceWithTheModelError() {
        Path missing = tmp.resolve("no-such-model");
        String expected = modelError(missing);
        GenerateJob.Spec spec = spec(ModelSource.directory(missing.toString()),
                SparkTests.write(tmp.resolve("r.csv"), REQUESTS), "out", 2);
        assertThatThrownBy(() -> GenerateJob.run(spark, spec)).isInstanceOf(ModelLoadException.class)
                .hasMessage(expected).hasMessageStartingWith("MISSING_FILE");
        assertThat(spec.results()).doesNotExist();
        assertThat(SparkTests.files(spec.images())).isEmpty();
    }

    @Test
    void aCorruptModelFailsTheJobAtOnceWithTheModelError() throws IOException {
        Path corrupt = copyOfModel(tmp.resolve("corrupt-model"));
        byte[] dit = Files.readAllBytes(corrupt.resolve("dit.pt"));
        dit[dit.length / 2] ^= 0x5a; // same size, other bytes
        Files.write(corrupt.resolve("dit.pt"), dit);
        String expected = modelError(corrupt);
        GenerateJob.Spec spec = spec(ModelSource.directory(corrupt.toString()),
                SparkTests.write(tmp.resolve("r.csv"), REQUESTS), "out", 2);
        assertThatThrownBy(() -> GenerateJob.run(spark, spec)).isInstanceOf(ModelLoadException.class)
                .hasMessage(expected).hasMessageStartingWith("CORRUPT_FILE");
        assertThat(spec.results()).doesNotExist();

        Result r = cli("--model", corrupt.toString(), "--requests", tmp.resolve("r.csv").toString(), "--out",
                tmp.resolve("cli-out").toString());
        assertThat(r.exitCode()).isEqualTo(3);
        assertThat(r.err()).isEqualTo("fora-spark: error: cannot load the model: " + expected + System.lineSeparator());
    }

    @Test
    void aModelDistributedAsAnArchiveIsFoundByItsName() throws IOException {
        Path zip = tmp.resolve("dit-patterns.zip");
        try (ZipOutputStream out = new ZipOutputStream(Files.newOutputStream(zip)); Stream<Path> files = Files.list(SparkTests.model())) {
            for (Path f : files.toList()) {
                out.putNextEntry(new ZipEntry(f.getFileName().toString()));
                Files.copy(f, out);
                out.closeEntry();
            }
        }
        // what spark-submit --archives dit-patterns.zip#fora-test-model does
        spark.sparkContext().addArchive(zip.toUri() + "#fora-test-model");
        GenerateJob.Spec spec = spec(ModelSource.directory("fora-test-model"), SparkTests.write(tmp.resolve("r.csv"), REQUESTS),
                "out", 2);
        assertThat(GenerateJob.run(spark, spec).ok()).isEqualTo(6);
        assertImagesAreTheDirectOnes(spec);
    }

    @Test
    void theCommandLineRunsTheShippedModelAndReports() {
        List<String> lines = new ArrayList<>(REQUESTS);
        lines.add("bad,10,2,,,10,");
        Path requests = SparkTests.write(tmp.resolve("requests.csv"), lines);
        Path out = tmp.resolve("cli");
        Result r = cli("--requests", requests.toString(), "--out", out.toString(), "--partitions", "2");
        assertThat(r.exitCode()).as(r.err()).isZero();
        assertThat(r.out()).contains("model       dit-patterns (shipped in the jar)",
                "requests    7: 6 ok, 1 errors", "(2 partitions, 2 cores)", out.resolve("images").toString(),
                "error       bad: label 10 at position 0 is out of range");
        GenerateJob.Spec spec = new GenerateJob.Spec(ModelSource.shipped(), requests.toString(), RequestTable.Format.CSV, out, 2,
                1, false);
        assertThat(SparkTests.files(spec.images())).hasSize(6);
        for (String id : DIRECT.keySet()) {
            assertThat(SparkTests.pngPixels(spec.images().resolve(id + ".png"))).as(id).isEqualTo(EXPECTED.get(id));
        }
        assertThat(spark.sparkContext().isStopped()).as("the test's session is not the command's to stop").isFalse();

        Result again = cli("--requests", requests.toString(), "--out", out.toString());
        assertThat(again.exitCode()).isEqualTo(4);
        assertThat(again.err()).contains("results already exists: pass --overwrite");
        Result overwritten = cli("--requests", requests.toString(), "--out", out.toString(), "--overwrite", "--scale", "2");
        assertThat(overwritten.exitCode()).as(overwritten.err()).isZero();
        assertThat(SparkTests.pngPixels(out.resolve("images/a0.png"))).hasSize(32 * 32);

        Path typo = SparkTests.write(tmp.resolve("typo.csv"), List.of("id,label,seed,polcy", "x,1,2,fora:3"));
        Result unknown = cli("--requests", typo.toString(), "--out", tmp.resolve("typo-out").toString());
        assertThat(unknown.exitCode()).isEqualTo(2);
        assertThat(unknown.err()).contains("unknown column(s) polcy");
        Result missing = cli("--requests", tmp.resolve("missing.csv").toString(), "--out", tmp.resolve("m-out").toString());
        assertThat(missing.exitCode()).isEqualTo(2);
        assertThat(missing.err()).startsWith("fora-spark: error: cannot read the requests " + tmp.resolve("missing.csv"))
                .contains("PATH_NOT_FOUND");
    }

    /** Exit code, stdout and stderr of one command line. */
    record Result(int exitCode, String out, String err) {
    }

    private static Result cli(String... args) {
        CommandLine cl = SparkGenerate.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(args);
        return new Result(code, out.toString(), err.toString());
    }

    /** The error loading the model directly gives. */
    private static String modelError(Path dir) {
        try {
            ModelDirectory.open(dir);
        } catch (ModelLoadException e) {
            return e.getMessage();
        }
        throw new AssertionError(dir + " loads");
    }

    private static Path copyOfModel(Path to) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> files = Files.list(SparkTests.model())) {
            for (Path f : files.toList()) {
                Files.copy(f, to.resolve(f.getFileName()));
            }
        }
        return to;
    }
}
