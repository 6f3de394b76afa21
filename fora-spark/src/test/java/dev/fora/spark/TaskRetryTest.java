package dev.fora.spark;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.djl.DiTPipeline;
import dev.fora.djl.GenerationRequest;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A task that fails after writing some images is retried without duplicate or missing outputs. */
class TaskRetryTest {

    /** Failures injected (local mode: the tasks run in this JVM). */
    private static final AtomicInteger FAILURES = new AtomicInteger();

    private static SparkSession spark;

    @TempDir
    Path tmp;

    @BeforeAll
    static void start() {
        spark = SparkTests.start("local[2,2]"); // two task threads, two attempts per task
    }

    @AfterAll
    static void stop() {
        if (spark != null) {
            spark.stop();
        }
    }

    /** The job's per-partition work, failing the first attempt of partition 0 after two of its images. */
    static final class FailFirstAttempt implements MapPartitionsFunction<Row, Row> {
        private static final long serialVersionUID = 1L;
        private final MapPartitionsFunction<Row, Row> work;

        FailFirstAttempt(MapPartitionsFunction<Row, Row> work) {
            this.work = work;
        }

        @Override
        public Iterator<Row> call(Iterator<Row> requests) throws Exception {
            Iterator<Row> results = work.call(requests);
            TaskContext task = TaskContext.get();
            if (task.partitionId() == 0 && task.attemptNumber() == 0) {
                results.next();
                results.next();
                FAILURES.incrementAndGet();
                throw new IllegalStateException("injected: the executor died after writing two images");
            }
            return results;
        }
    }

    @Test
    void aRetriedTaskLeavesEachImageOnceAndEachResultRowOnce() throws Exception {
        Path requests = SparkTests.write(tmp.resolve("requests.csv"), SparkTests.REQUESTS);
        ModelSource model = ModelSource.directory(SparkTests.model().toString());
        GenerateJob.Spec spec = new GenerateJob.Spec(model, requests.toString(), RequestTable.Format.CSV, tmp.resolve("out"), 2,
                1, false);

        GenerateJob.Summary summary = GenerateJob.run(spark, spec,
                new FailFirstAttempt(new GenerateRequests(model, spec.images(), 1)));

        assertThat(FAILURES.get()).as("the injected failure happened").isEqualTo(1);
        assertThat(summary.ok()).isEqualTo(6);
        assertThat(summary.errors()).isZero();
        Map<String, Row> results = SparkTests.results(spark, spec); // fails on a duplicate id
        assertThat(results.keySet()).containsExactlyInAnyOrder("a0", "a1", "a2", "b0", "b1", "b2");
        assertThat(SparkTests.files(spec.images())).as("each image once, no temporary files")
                .containsExactlyInAnyOrder("a0.png", "a1.png", "a2.png", "b0.png", "b1.png", "b2.png");
        // the same pixels as the library's: the request a0 generated directly
        DiTPipeline pipeline = Pipelines.get(model);
        assertThat(SparkTests.pngPixels(spec.images().resolve("a0.png"))).isEqualTo(SparkTests.expectedPixels(pipeline,
                GenerationRequest.builder(0).seed(100).policy("fora:3").sampler("ddim").steps(10).cfgScale(1.5).build()));
    }
}
