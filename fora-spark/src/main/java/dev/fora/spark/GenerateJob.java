package dev.fora.spark;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.when;

import dev.fora.djl.ModelLoadException;
import dev.fora.djl.TextEncoder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;
import org.apache.spark.api.java.function.MapFunction;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import scala.Tuple2;

/**
 * The batch job: requests in, one PNG per request and a Parquet results table out.
 *
 * <p>Retries are safe by construction: a PNG's name comes from its request id and it is
 * written atomically, so a retried task rewrites the same bytes under the same name; the results
 * table is the output of the one Spark action that generates the images, written through Spark's
 * commit protocol, so only one attempt of each task adds its rows.
 */
public final class GenerateJob {

    /**
     * What to run.
     *
     * @param model the model
     * @param requests the requests file (any path Spark's readers take)
     * @param format its format
     * @param out the output directory, on a file system the driver and every executor see at this path
     * @param partitions how many tasks share the requests; 0 for four per core of the cluster
     * @param scale each pixel enlarged to {@code scale x scale} in the PNGs
     * @param overwrite whether to replace an earlier results table in {@code out}
     */
    public record Spec(ModelSource model, String requests, RequestTable.Format format, Path out, int partitions, int scale,
            boolean overwrite) {

        /** Validates the numbers; makes {@code out} absolute (executors resolve a relative path in their own directory). */
        public Spec {
            Objects.requireNonNull(model, "model");
            Objects.requireNonNull(requests, "requests");
            Objects.requireNonNull(format, "format");
            out = Objects.requireNonNull(out, "out").toAbsolutePath();
            if (partitions < 0) {
                throw new IllegalArgumentException("partitions must be >= 1 (or 0 for the default), got " + partitions);
            }
            if (scale < 1) {
                throw new IllegalArgumentException("scale must be >= 1, got " + scale);
            }
        }

        /** The PNGs: {@code <out>/images/<id>.png}. */
        public Path images() {
            return out.resolve("images");
        }

        /** The results table (Parquet): {@code <out>/results}. */
        public Path results() {
            return out.resolve("results");
        }
    }

    /**
     * What a run did.
     *
     * @param model the model's name
     * @param ok requests that produced their image
     * @param errors requests that did not (see the results table)
     * @param partitions tasks the requests were split into
     * @param nanos wall time of the generating action (the model already loaded on one executor)
     */
    public record Summary(String model, long ok, long errors, int partitions, long nanos) {

        /** Request rows. */
        public long requests() {
            return ok + errors;
        }

        /** Request rows per second of wall time. */
        public double requestsPerSecond() {
            return requests() / (nanos / 1e9);
        }
    }

    private GenerateJob() {
    }

    /**
     * Runs the job.
     *
     * @throws ModelLoadException the model cannot be loaded (checked on an executor before any
     *     request runs, so the job fails at once)
     * @throws RequestTableException the requests file cannot be used, or it has a prompt column
     *     and the model directory no text encoder
     * @throws OutputException the output directory cannot be used
     * @throws SparkJobException the job failed otherwise (a task kept failing)
     */
    public static Summary run(SparkSession spark, Spec spec) throws ModelLoadException {
        return run(spark, spec, new GenerateRequests(spec.model(), spec.images(), spec.scale()));
    }

    /** {@link #run(SparkSession, Spec)} with the per-partition work given (tests wrap it to fail a task). */
    static Summary run(SparkSession spark, Spec spec, MapPartitionsFunction<Row, Row> generator) throws ModelLoadException {
        prepareOutput(spec);
        RequestTable.Requests requests = RequestTable.read(spark, spec.requests(), spec.format());
        Tuple2<String, Boolean> checked = checkModel(spark, spec.model());
        String model = checked._1();
        if (requests.prompts() && !checked._2()) {
            throw new RequestTableException(spec.requests() + " has a " + RequestTable.PROMPT + " column but model " + model
                    + " has no text encoder to encode prompts (its manifest lists no " + TextEncoder.FILE_ROLE + "; a PixArt-α"
                    + " directory gets one with python3 -m fora_tools.export_t5, docs/prompts.md)");
        }
        int partitions = spec.partitions() > 0 ? spec.partitions() : 4 * spark.sparkContext().defaultParallelism();
        String results = spec.results().toUri().toString(); // a local path, whatever the cluster's default file system
        long t0 = System.nanoTime();
        try {
            requests.rows().repartition(partitions).mapPartitions(generator, ResultTable.ENCODER).write()
                    .mode(spec.overwrite() ? SaveMode.Overwrite : SaveMode.ErrorIfExists).parquet(results);
        } catch (Exception e) { // Spark throws its checked SparkException undeclared
            throw failure(e);
        }
        long nanos = System.nanoTime() - t0;
        Row counts = spark.read().parquet(results)
                .agg(count(lit(1)), sum(when(col("status").equalTo(ResultTable.ERROR), 1).otherwise(0))).first();
        long errors = counts.isNullAt(1) ? 0 : counts.getLong(1);
        return new Summary(model, counts.getLong(0) - errors, errors, partitions, nanos);
    }

    /**
     * Loads the model and its text encoder, if it has one, on one executor (where they stay loaded
     * for the job's tasks): a missing or corrupt model fails here, before any request runs, with
     * the model's own error.
     *
     * @return the model's name, and whether it has a text encoder
     */
    static Tuple2<String, Boolean> checkModel(SparkSession spark, ModelSource model) throws ModelLoadException {
        try {
            return spark.range(0, 1, 1, 1)
                    .map((MapFunction<Long, Tuple2<String, Boolean>>) i -> new Tuple2<>(Pipelines.get(model).manifest().name(),
                            Pipelines.textEncoder(model) != null), Encoders.tuple(Encoders.STRING(), Encoders.BOOLEAN()))
                    .first();
        } catch (Exception e) { // Spark throws its checked SparkException undeclared
            throw failure(e);
        }
    }

    /**
     * The model's error if a task failed on it (it travels back inside Spark's exception), else
     * the failure as a {@link SparkJobException}.
     */
    private static RuntimeException failure(Exception e) throws ModelLoadException {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof ModelLoadException m) {
                throw m;
            }
        }
        return new SparkJobException("the Spark job failed: " + RequestTable.firstLine(e.getMessage()), e);
    }

    /** The images directory exists; an earlier results table is only replaced when asked to. */
    private static void prepareOutput(Spec spec) {
        if (Files.exists(spec.results()) && !spec.overwrite()) {
            throw new OutputException(spec.results() + " already exists: pass --overwrite to replace the results (images of"
                    + " the same ids are replaced too) or give another --out", null);
        }
        try {
            Files.createDirectories(spec.images());
        } catch (IOException e) {
            throw new OutputException("cannot create " + spec.images() + ": " + e, e);
        }
    }
}
