package dev.fora.examples.cli;

import static dev.fora.examples.cli.Table.f;

import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.NoCache;
import dev.fora.core.cache.SchedulePolicy;
import dev.fora.core.cache.StepMaskPolicy;
import dev.fora.core.cache.WarmupCooldown;
import dev.fora.djl.GenerationRequest.Forward;
import dev.fora.djl.TorchScriptClassifier;
import dev.fora.examples.engine.Generator;
import dev.fora.examples.engine.Generator.Job;
import dev.fora.examples.image.ImageBatch;
import dev.fora.examples.metrics.FrechetDistance;
import dev.fora.examples.metrics.ImageMetrics;
import dev.fora.examples.metrics.Summary;
import dev.fora.examples.progress.Progress;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code fora compare}: the same seeds without a cache and under each policy; a PNG grid and a
 * table of speed and quality.
 */
@Command(name = "compare", sortOptions = false, mixinStandardHelpOptions = true,
        description = {"Compare cache policies with the uncached run on the same seeds: PNG grid and table of speed "
                + "and quality.",
                "Generates the same images (same labels, same seeds) without a cache (none) and under each "
                + "--policy; writes a PNG grid (rows: policies, columns: samples) and prints a table:",
                "  wall time (median of --repeats runs); measured speed-up (wall time of none / of the policy; none runs "
                + "the exported whole-model forward, the model without this library);",
                "  FLOP-bound speed-up;",
                "  PSNR and SSIM against the uncached images (per image on [0,1], then averaged);",
                "  class accuracy: how often the shipped classifier recognises the intended class;",
                "  Frechet distance (FD) of the classifier's penultimate features against those of the uncached "
                + "images of the same seeds; the none row shows the FD between the uncached images and an uncached "
                + "batch of other seeds: the sampling-noise floor at this sample size;",
                "  peak cache memory."},
        footer = {"", "Example: fora compare --all-classes --per-class 2 --policy fora:2,fora:3,fora:5 --out compare.png"})
public final class CompareCommand implements Callable<Integer> {

    /** Seed offset of the uncached reference batch of other seeds (the FD noise floor). */
    static final long NOISE_FLOOR_SEED_OFFSET = 1_000_003L;

    /** Steps of a warm-up run: enough for every policy to compute, reuse and forecast at least once. */
    static final int WARMUP_STEPS = 10;

    @Spec
    CommandSpec spec;

    @Mixin
    SamplingOptions sampling;

    @Option(names = "--policy", paramLabel = "SPEC", defaultValue = "fora:2,fora:3,fora:5",
            description = "Cache policy specs to compare with none; repeat the option or separate by commas "
                    + "(default: ${DEFAULT-VALUE}).")
    List<String> policies;

    @Option(names = {"-o", "--out"}, paramLabel = "FILE", defaultValue = "compare.png",
            description = "PNG grid to write (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write one JSON object per policy (an array).")
    Path json;

    @Option(names = "--plot", paramLabel = "FILE",
            description = "Also write a PNG plot: PSNR, and FD over its noise floor, against the speed-up; one point per policy.")
    Path plot;

    @Option(names = "--plot-x", paramLabel = "AXIS", defaultValue = "measured",
            description = "The plot's x axis: measured (wall-time speed-up) or flop (FLOP-bound speed-up) "
                    + "(default: ${DEFAULT-VALUE}).")
    String plotX;

    @Option(names = "--warmup", paramLabel = "N", defaultValue = "1",
            description = "Untimed rounds before timing; a round runs every policy (none too) on the first batch for at most "
                    + WARMUP_STEPS + " steps (a schedule or a step mask: its own step count) (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--repeats", paramLabel = "R", defaultValue = "1",
            description = "Timed runs per policy, interleaved; wall times are medians, images from the first run "
                    + "(default: ${DEFAULT-VALUE}).")
    int repeats;

    @Mixin
    GridOptions grid;

    @Mixin
    CommonOptions common;

    /** The figures of one policy. */
    record Row(String policy, String sampler, int steps, double cfg, long seed, int images, int repeats, double wallMs,
            double msPerImage, double computeFraction, double flopSpeedup, double measuredSpeedup, double psnrDb,
            double ssim, Double classAccuracy, Double frechetDistance, long cacheBytesPeak) {

        /** {@code host}: {@link Host#describe()}, as wall times depend on the machine and its allocator. */
        Map<String, Object> json(String model, Map<String, Object> host) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("model", model);
            o.put("policy", policy);
            o.put("sampler", sampler);
            o.put("steps", steps);
            o.put("cfg", cfg);
            o.put("seed", seed);
            o.put("images", images);
            o.put("repeats", repeats);
            o.put("wall_ms", wallMs);
            o.put("ms_per_image", msPerImage);
            o.put("compute_fraction", computeFraction);
            o.put("flop_speedup", flopSpeedup);
            o.put("measured_speedup", measuredSpeedup);
            o.put("psnr_db", Outputs.finite(psnrDb));
            o.put("ssim", ssim);
            o.put("class_accuracy", classAccuracy);
            o.put("frechet_distance", frechetDistance);
            o.put("frechet_reference", policy.equals("none") ? "uncached, other seeds (noise floor)"
                    : "uncached, same seeds");
            o.put("cache_bytes_peak", cacheBytesPeak);
            o.put("host", host);
            return o;
        }
    }

    @Override
    public Integer call() {
        sampling.validate();
        Map<String, CachePolicy> specs = Policies.noneAnd(policies);
        Outputs.checkWritable(out, "--out", spec);
        Outputs.checkWritable(json, "--json", spec);
        Outputs.checkWritable(plot, "--plot", spec);
        if (!plotX.equals("measured") && !plotX.equals("flop")) {
            throw new CliException(ExitCodes.USAGE, "--plot-x must be measured or flop, got " + plotX);
        }
        Checks.atLeast("--warmup", warmup, 0);
        Checks.atLeast("--repeats", repeats, 1);
        grid.validate();
        try (Generator generator = common.load()) {
            sampling.samplerOptions.configure(generator);
            Runs runs = run(generator, specs);
            report(generator, runs, score(generator, runs));
        }
        return ExitCodes.OK;
    }

    /**
     * What the policies generated.
     *
     * @param labels the image labels
     * @param results each policy's first run, {@code none} first
     * @param medianMs each policy's median wall time over the repeats
     * @param floor an uncached run from other seeds (the noise floor of FD), or null
     */
    private record Runs(int[] labels, Map<String, Generator.Run> results, Map<String, Double> medianMs, Generator.Run floor) {
    }

    /**
     * Warm-up rounds and timed rounds of every policy, interleaved ({@link Rounds}, as bench), then
     * the floor.
     */
    private Runs run(Generator generator, Map<String, CachePolicy> specs) {
        int[] labels = sampling.imageRows(generator);
        // The uncached baseline is the whole-model forward (as bench's fastest uncached path): the
        // staged path without a cache also computes the features a cache would keep, and discards them.
        Job base = sampling.job(labels, NoCache.INSTANCE).withPath(Forward.WHOLE_MODEL);
        Map<String, Job> jobs = new LinkedHashMap<>();
        specs.forEach((k, p) -> jobs.put(k, p == NoCache.INSTANCE ? base : base.withPath(Forward.CACHED).withPolicy(p)));
        int[] firstBatch = java.util.Arrays.copyOf(labels, Math.min(labels.length, base.batchSize()));
        java.util.function.UnaryOperator<Job> warmupJob = j -> j.withLabels(firstBatch)
                .withSteps(forOneStepCount(j.policy()) ? j.steps() : Math.min(j.steps(), WARMUP_STEPS));
        boolean floor = generator.classifier().isPresent() && labels.length >= 2;
        long runs = (long) specs.size() * repeats + (floor ? 1 : 0);
        Map<String, Generator.Run> results = new LinkedHashMap<>();
        Map<String, List<Double>> wallMs = new LinkedHashMap<>();
        specs.keySet().forEach(k -> wallMs.put(k, new ArrayList<>()));
        Generator.Run floorRun = null;
        try (Progress progress = Progress.create(common.quiet, "compare", runs * base.batches() * base.steps()
                + warmup * Rounds.warmupSteps(jobs, warmupJob), (int) (runs * labels.length
                        + (long) warmup * specs.size() * firstBatch.length))) {
            Rounds.run(generator, jobs, warmupJob, warmup, repeats, progress, (repeat, path, run) -> {
                results.putIfAbsent(path, run);
                wallMs.get(path).add(run.nanos() / 1e6);
            });
            if (floor) {
                progress.phase("none, other seeds");
                floorRun = generator.run(base.withSeed(sampling.seed + NOISE_FLOOR_SEED_OFFSET), progress);
            }
        }
        Map<String, Double> medianMs = new LinkedHashMap<>();
        wallMs.forEach((k, v) -> medianMs.put(k, Summary.of(v).median()));
        return new Runs(labels, results, medianMs, floorRun);
    }

    /** One row per policy: speed against {@code none}, and quality against {@code none}'s images. */
    private List<Row> score(Generator generator, Runs runs) {
        int[] labels = runs.labels();
        Generator.Run reference = runs.results().get("none");
        Optional<TorchScriptClassifier> classifier = generator.classifier();
        float[][] refFeatures = classifier.map(c -> Generator.features(c, reference.images())).orElse(null);
        List<Row> rows = new ArrayList<>();
        for (Map.Entry<String, Generator.Run> e : runs.results().entrySet()) {
            Generator.Run run = e.getValue();
            Double accuracy = null;
            Double fd = null;
            if (classifier.isPresent()) {
                TorchScriptClassifier c = classifier.get();
                accuracy = Generator.accuracy(c, run.images(), labels);
                if (labels.length >= 2) {
                    float[][] other = e.getKey().equals("none") ? Generator.features(c, runs.floor().images())
                            : Generator.features(c, run.images());
                    fd = FrechetDistance.between(other, refFeatures);
                }
            }
            double ms = runs.medianMs().get(e.getKey());
            rows.add(new Row(e.getKey(), sampling.samplerKind().id(), sampling.samplerOptions.steps, sampling.samplerOptions.cfg,
                    sampling.seed, labels.length, repeats, ms, ms / labels.length, run.stats().computeFraction(),
                    run.stats().flopSpeedup(), runs.medianMs().get("none") / ms,
                    ImageMetrics.meanPsnr(run.images(), reference.images()),
                    ImageMetrics.meanSsim(run.images(), reference.images()), accuracy, fd, run.stats().peakCacheBytes()));
        }
        return rows;
    }

    /** The grid, the table on stdout and the JSON. */
    private void report(Generator generator, Runs runs, List<Row> rows) {
        PrintWriter stdout = spec.commandLine().getOut();
        int[] labels = runs.labels();
        List<ImageBatch> gridRows = new ArrayList<>();
        for (Generator.Run run : runs.results().values()) {
            gridRows.add(run.images());
        }
        Outputs.writeGrid(grid.grid(gridRows.get(0).height()), gridRows, new ArrayList<>(runs.results().keySet()), out,
                "--out");
        stdout.printf(Locale.ROOT, "model %s (%s); %d images (%s x %d), %s %d steps, cfg %s, seed %d%n",
                generator.manifest().name(), generator.directory(), labels.length,
                GenerateCommand.plural(labels.length / sampling.perClass, "class", "classes"), sampling.perClass,
                sampling.samplerKind(), sampling.samplerOptions.steps, GenerateCommand.fmt(sampling.samplerOptions.cfg), sampling.seed);
        stdout.print(table(rows).render());
        if (generator.classifier().isEmpty()) {
            stdout.println("(no classifier.pt in the model directory: class accuracy and FD not available)");
        } else if (labels.length < 2) {
            stdout.println("(FD needs at least 2 images)");
        }
        stdout.printf(Locale.ROOT, "wrote %s (rows: %s; %d columns)%n", out, String.join(", ", runs.results().keySet()),
                labels.length);
        if (plot != null) {
            writePlot(generator, rows);
            stdout.printf(Locale.ROOT, "wrote %s%n", plot);
        }
        if (json != null) {
            List<Map<String, Object>> array = new ArrayList<>();
            Map<String, Object> host = Host.describe();
            for (Row r : rows) {
                array.add(r.json(generator.manifest().name(), host));
            }
            Outputs.writeJson(array, json, "--json");
            stdout.printf(Locale.ROOT, "wrote %s%n", json);
        }
        stdout.flush();
    }

    /** PSNR and FD / floor against the speed-up, one point per policy (none excluded). */
    private void writePlot(Generator generator, List<Row> rows) {
        Double floor = rows.get(0).frechetDistance();
        List<dev.fora.examples.image.SpeedupPlot.Point> points = new ArrayList<>();
        for (Row r : rows.subList(1, rows.size())) {
            double fd = r.frechetDistance() == null || floor == null || floor <= 0 ? Double.NaN : r.frechetDistance() / floor;
            points.add(new dev.fora.examples.image.SpeedupPlot.Point(r.policy(), plotX.equals("flop") ? r.flopSpeedup()
                    : r.measuredSpeedup(), r.psnrDb(), fd));
        }
        String title = generator.manifest().name() + ", " + sampling.samplerKind().id() + "-" + sampling.samplerOptions.steps;
        String x = plotX.equals("flop") ? "FLOP-bound speed-up" : "measured speed-up (wall time of none / policy)";
        Outputs.write(plot, "--plot", o -> dev.fora.examples.image.SpeedupPlot.write(points, title, x, o));
    }

    static Table table(List<Row> rows) {
        Table t = new Table("policy", "wall s", "ms/img", "speedup", "FLOP bound", "compute", "PSNR dB", "SSIM",
                "class acc", "FD", "cache peak");
        for (Row r : rows) {
            t.row(r.policy(), f("%.2f", r.wallMs() / 1e3), f("%.1f", r.msPerImage()), f("%.2fx", r.measuredSpeedup()),
                    f("%.2fx", r.flopSpeedup()), f("%.3f", r.computeFraction()),
                    Double.isInfinite(r.psnrDb()) ? "inf" : f("%.2f", r.psnrDb()), f("%.4f", r.ssim()),
                    r.classAccuracy() == null ? "-" : f("%.3f", r.classAccuracy()),
                    r.frechetDistance() == null ? "-" : (r.policy().equals("none") ? "(" + f("%.3f", r.frechetDistance())
                            + ")" : f("%.3f", r.frechetDistance())),
                    GenerateCommand.bytes(r.cacheBytesPeak()));
        }
        return t;
    }

    /** Whether the policy is written for one step count and refuses others (a schedule, a step mask). */
    private static boolean forOneStepCount(CachePolicy policy) {
        CachePolicy p = policy;
        while (p instanceof WarmupCooldown w) {
            p = w.inner();
        }
        return p instanceof SchedulePolicy || p instanceof StepMaskPolicy;
    }
}
