package dev.fora.spark;

import dev.fora.core.cache.CachePolicies;
import dev.fora.djl.ModelLoadException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.UsageMessageSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;
import picocli.CommandLine.Spec;

/**
 * The batch job's command line, for {@code spark-submit --class dev.fora.spark.SparkGenerate}.
 * Errors print one line ({@code fora-spark: error: ...}) and exit with the codes of the
 * {@code fora} command ({@link ExitCodes}); rows that fail are not errors of the job: they are in
 * the results table.
 */
@Command(name = "fora-spark", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Generate one PNG per request row on Apache Spark, with FORA caching, and write a Parquet table of "
                + "results (id, status, error, the request, compute fraction, FLOP speed-up, cache peak bytes, wall ms, "
                + "output path).",
                "Request columns: id, seed (required), label or prompt (a prompt for a text model with a text encoder), "
                + "embeddings (reserved), policy (default fora:3), sampler (ddim), steps (50), cfg (1.5). Each image equals "
                + "the single-machine one of the same label or prompt and seed."},
        footer = {"", "Exit codes: 0 job done (failed rows are in the results table), 1 the Spark job failed, 2 invalid usage or "
                + "requests table, 3 model cannot be loaded, 4 output directory cannot be used."})
public final class SparkGenerate implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--requests", required = true, paramLabel = "FILE",
            description = "The requests: CSV with a header, JSON Lines or Parquet (any path Spark reads).")
    String requests;

    @Option(names = "--format", paramLabel = "FORMAT",
            description = "csv, json or parquet (default: from the file name's extension).")
    RequestTable.Format format;

    @Option(names = "--out", required = true, paramLabel = "DIR",
            description = "Output directory: images/<id>.png and results/ (Parquet). A path the driver and every executor "
                    + "see (a shared file system on a cluster).")
    Path out;

    @Option(names = "--model", paramLabel = "DIR",
            description = "Exported model directory as every executor sees it: absolute on a shared file system, or "
                    + "relative (found in the working directory or among files distributed with --archives/--files). "
                    + "Default: the model shipped in this jar.")
    String model;

    @Option(names = "--partitions", paramLabel = "N",
            description = "Tasks to split the requests into (default: 4 per core of the cluster).")
    Integer partitions;

    @Option(names = "--scale", paramLabel = "S", defaultValue = "1",
            description = "Enlarge each pixel to S x S in the PNGs (default: ${DEFAULT-VALUE}).")
    int scale;

    @Option(names = "--overwrite", description = "Replace the results table of an earlier run in --out.")
    boolean overwrite;

    @Option(names = "--master", paramLabel = "URL",
            description = "Spark master when run without spark-submit, e.g. local[2] (spark-submit sets it).")
    String master;

    @Option(names = {"-v", "--verbose"}, description = "Print stack traces of errors.")
    boolean verbose;

    /** Entry point for spark-submit. */
    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs the command line in-process and returns the exit code (for tests and embedding). */
    public static int execute(String... args) {
        return commandLine().execute(args);
    }

    /** The configured command line: one-line errors, exit codes from {@link ExitCodes}. */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new SparkGenerate());
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setParameterExceptionHandler(SparkGenerate::onParameterError);
        cl.setExecutionExceptionHandler(SparkGenerate::onExecutionError);
        // the registered policy types, read when the help is printed
        cl.getHelpSectionMap().put(UsageMessageSpec.SECTION_KEY_FOOTER_HEADING,
                help -> System.lineSeparator() + "Policy specs: " + CachePolicies.forms() + System.lineSeparator());
        return cl;
    }

    /**
     * Runs the job in the active Spark session (spark-submit's, or a test's), or in a new one that
     * it stops at the end.
     */
    @Override
    public Integer call() throws ModelLoadException {
        if (partitions != null && partitions < 1) {
            throw new ParameterException(spec.commandLine(), "--partitions must be >= 1, got " + partitions);
        }
        if (scale < 1) {
            throw new ParameterException(spec.commandLine(), "--scale must be >= 1, got " + scale);
        }
        GenerateJob.Spec job = new GenerateJob.Spec(model == null ? ModelSource.shipped() : ModelSource.directory(model),
                requests, format != null ? format : RequestTable.Format.of(requests), out,
                partitions == null ? 0 : partitions, scale, overwrite);
        boolean ownSession = SparkSession.getActiveSession().isEmpty() && SparkSession.getDefaultSession().isEmpty();
        SparkSession.Builder builder = SparkSession.builder().appName("fora-spark");
        if (master != null) {
            builder.master(master);
        }
        SparkSession spark = builder.getOrCreate();
        try {
            GenerateJob.Summary summary = GenerateJob.run(spark, job);
            report(spark, job, summary);
        } finally {
            if (ownSession) {
                spark.stop();
            }
        }
        return ExitCodes.OK;
    }

    private void report(SparkSession spark, GenerateJob.Spec job, GenerateJob.Summary s) {
        PrintWriter stdout = spec.commandLine().getOut();
        stdout.printf(Locale.ROOT, "model       %s (%s)%n", s.model(), job.model());
        stdout.printf(Locale.ROOT, "requests    %d: %d ok, %d errors%n", s.requests(), s.ok(), s.errors());
        stdout.printf(Locale.ROOT, "wall time   %.3f s, %.2f requests/s (%d partitions, %d cores)%n", s.nanos() / 1e9,
                s.requestsPerSecond(), s.partitions(), spark.sparkContext().defaultParallelism());
        stdout.printf(Locale.ROOT, "images      %s%n", job.images());
        stdout.printf(Locale.ROOT, "results     %s (Parquet)%n", job.results());
        if (s.errors() > 0) {
            List<Row> first = spark.read().parquet(job.results().toUri().toString())
                    .filter("status = '" + ResultTable.ERROR + "'").select("id", "error").limit(10).collectAsList();
            for (Row r : first) {
                stdout.printf(Locale.ROOT, "error       %s: %s%n", r.getString(0), r.getString(1));
            }
            if (s.errors() > first.size()) {
                stdout.printf(Locale.ROOT, "            ... %d more in the results table (status = 'error')%n",
                        s.errors() - first.size());
            }
        }
        stdout.flush();
    }

    private static int onParameterError(ParameterException e, String[] args) {
        PrintWriter err = e.getCommandLine().getErr();
        err.println("fora-spark: " + RequestTable.firstLine(e.getMessage()) + " (see 'fora-spark --help')");
        err.flush();
        return ExitCodes.USAGE;
    }

    private static int onExecutionError(Exception e, CommandLine cl, ParseResult parseResult) {
        int code;
        String message;
        if (e instanceof ModelLoadException m) {
            code = ExitCodes.MODEL;
            message = "cannot load the model: " + m.getMessage();
        } else if (e instanceof RequestTableException) {
            code = ExitCodes.USAGE;
            message = e.getMessage();
        } else if (e instanceof OutputException) {
            code = ExitCodes.OUTPUT;
            message = e.getMessage();
        } else if (e instanceof SparkJobException) {
            code = ExitCodes.INTERNAL;
            message = e.getMessage();
        } else {
            code = ExitCodes.INTERNAL;
            message = "internal error: " + e;
        }
        PrintWriter err = cl.getErr();
        err.println("fora-spark: error: " + RequestTable.firstLine(message));
        if (parseResult.hasMatchedOption("--verbose")) {
            e.printStackTrace(err);
        }
        err.flush();
        return code;
    }
}
