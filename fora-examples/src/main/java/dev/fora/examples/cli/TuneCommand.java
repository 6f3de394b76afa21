package dev.fora.examples.cli;

import static dev.fora.examples.cli.Table.f;

import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.CacheSchedule;
import dev.fora.core.cache.NoCache;
import dev.fora.core.cache.SchedulePolicy;
import dev.fora.core.recording.Recording;
import dev.fora.core.tuning.ScheduleSearch;
import dev.fora.djl.GenerationRequest.Forward;
import dev.fora.examples.engine.Generator;
import dev.fora.examples.engine.Generator.Job;
import dev.fora.examples.image.ImageBatch;
import dev.fora.examples.metrics.ImageMetrics;
import dev.fora.examples.progress.Progress;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code fora tune}: searches a per-block, per-step cache schedule at a FLOP bound on recordings
 * ({@link ScheduleSearch}), writes it ({@link ScheduleFiles}) and measures it on held-out seeds.
 */
@Command(name = "tune", sortOptions = false, mixinStandardHelpOptions = true,
        description = {"Search the cache schedule (per block and branch: the steps that compute, and the forecast on the "
                + "others) with the lowest error at a FLOP bound, and measure it on seeds it was not tuned on.",
                "Training data: recordings ('fora record', same sampler and steps) given with --recording, or recorded "
                + "here from every class x --per-class images on seeds --train-seed, --train-seed + 1, ...",
                "The search (ScheduleSearch): start from the uniform schedule at the bound, pick the forecast (reuse, "
                + "TaylorSeer, HiCache order and contraction) by replay, then budget-keeping moves of single computed "
                + "steps, kept when the replay estimate falls (after ECAD arXiv 2506.15682 and ProCache arXiv "
                + "2512.17298); then, unless given recordings, more moves kept when the training images generated with "
                + "the schedule come closer to the uncached ones (--closed-loop-moves), from the closer of two replay "
                + "schedules: over every forecast and over the first-order ones (--single-start for the first only).",
                "Writes the schedule (--out; use it as --policy schedule:FILE) and a JSON report (--report) with spec, "
                + "flop_speedup, replay_estimate and heldout_psnr_db (every class x --heldout-per-class images on seeds "
                + "from --heldout-seed, against the uncached images), next to the uniform schedule at the same bound."},
        footer = {"", "Example: fora tune --target-speedup 4.5 --sampler ddim --steps 50 --out ddim50-4.5x.json "
                + "--report ddim50-4.5x-report.json"})
public final class TuneCommand implements Callable<Integer> {

    /**
     * Closed-loop moves by default. On the shipped model at 4.5x, 150 moves on 20 images left DDPM-50
     * at 24.6-25.5 dB across three held-out seed sets; 500 moves on 30 images (about four minutes)
     * gave 25.8-26.9 dB, and DDIM-50 36.7 -> 37.9 dB (docs/policies-tuned.md).
     */
    static final int AUTO_CLOSED_LOOP_MOVES = 500;

    @Spec
    CommandSpec spec;

    @Option(names = "--target-speedup", paramLabel = "X", required = true,
            description = "The FLOP bound to meet (from below): computed branch FLOPs <= uncached / X.")
    double target;

    @Option(names = "--recording", paramLabel = "FILE",
            description = "Training recordings (repeatable); without it the command records its own.")
    List<Path> recordings;

    @Option(names = "--train-seed", paramLabel = "S", defaultValue = "1000",
            description = "First noise seed of the images recorded for training (default: ${DEFAULT-VALUE}).")
    long trainSeed;

    @Option(names = "--per-class", paramLabel = "N", defaultValue = "1",
            description = "Training images recorded per class (default: ${DEFAULT-VALUE}; 16 MB each for the shipped model).")
    int perClass;

    @Option(names = "--heldout-seed", paramLabel = "S", defaultValue = "0",
            description = "First noise seed of the held-out images (default: ${DEFAULT-VALUE}); must not overlap the "
                    + "training seeds.")
    long heldoutSeed;

    @Option(names = "--heldout-per-class", paramLabel = "N", defaultValue = "5",
            description = "Held-out images per class (default: ${DEFAULT-VALUE}); 0 skips the held-out measurement.")
    int heldoutPerClass;

    @Mixin
    SamplerOptions sampler;

    @Option(names = "--moves", paramLabel = "N", defaultValue = "4000",
            description = "Schedule moves the search tries (default: ${DEFAULT-VALUE}).")
    int moves;

    @Option(names = "--closed-loop-moves", paramLabel = "N",
            description = "After the replay's search, a closed-loop stage: pick the forecast again and try N more moves, "
                    + "each scored by generating the closed-loop images with the schedule and kept if their mean PSNR "
                    + "against the uncached images rises. It sees how errors carry across steps, which the one-step "
                    + "replay does not (default: " + AUTO_CLOSED_LOOP_MOVES + "; 0, none, with --recording).")
    Integer closedLoopMoves;

    @Option(names = "--closed-loop-per-class", paramLabel = "N", defaultValue = "3",
            description = "Images per class the closed-loop stage generates, on the training seeds from --train-seed "
                    + "(default: ${DEFAULT-VALUE}).")
    int closedLoopPerClass;

    @Option(names = "--single-start",
            description = "The closed-loop stage starts from the replay's search over every forecast only. By default "
                    + "the replay's search also runs over the first-order forecasts (reuse, TaylorSeer 1, HiCache 1), and "
                    + "the stage continues from whichever of the two schedules generates closer images: the replay "
                    + "favours higher orders, which the images do not always bear out.")
    boolean singleStart;

    @Option(names = "--search-seed", paramLabel = "S", defaultValue = "1",
            description = "Seed of the search's moves; the same seed and moves give the same schedule (default: "
                    + "${DEFAULT-VALUE}).")
    long searchSeed;

    @Option(names = "--time-limit", paramLabel = "SECONDS", defaultValue = "540",
            description = "A safety stop: end the search after this long with the best schedule so far (default: "
                    + "${DEFAULT-VALUE}). The move counts, not the clock, end a search that finishes in time, so a seed "
                    + "gives the same schedule on any machine; the report says if the clock ended it (then it does not).")
    long timeLimit;

    @Option(names = "--separate-guidance-halves",
            description = "The schedule gives a guided image's conditional and unconditional halves a decider each.")
    boolean separateHalves;

    @Option(names = "--whole-steps",
            description = "Every block and branch computes at the same steps: each step computes or caches as a whole, "
                    + "without the per-block freedom (for exports without forward_masked, whose mixed steps run stage "
                    + "by stage).")
    boolean wholeSteps;

    @Option(names = {"-o", "--out"}, paramLabel = "FILE", defaultValue = "schedule.json",
            description = "Schedule file to write (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--report", paramLabel = "FILE", description = "JSON report to write.")
    Path report;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "32",
            description = "Images per generation call of the held-out runs (default: ${DEFAULT-VALUE}).")
    int batch;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() {
        sampler.check();
        if (!(target >= 1) || target > sampler.steps) {
            throw new CliException(ExitCodes.USAGE, "--target-speedup must be from 1 to --steps (" + sampler.steps + "), got "
                    + target);
        }
        Checks.atLeast("--per-class", perClass, 1);
        Checks.atLeast("--heldout-per-class", heldoutPerClass, 0);
        Checks.atLeast("--moves", moves, 0);
        boolean recorded = recordings != null && !recordings.isEmpty();
        if (closedLoopMoves == null) {
            closedLoopMoves = recorded ? 0 : AUTO_CLOSED_LOOP_MOVES;
        }
        Checks.atLeast("--closed-loop-moves", closedLoopMoves, 0);
        if (recorded && closedLoopMoves > 0) {
            throw new CliException(ExitCodes.USAGE, "--closed-loop-moves generates its images on the seeds from "
                    + "--train-seed; use it without --recording");
        }
        Checks.atLeast("--closed-loop-per-class", closedLoopPerClass, 1);
        Checks.atLeast("--time-limit", timeLimit, 1);
        Checks.atLeast("--batch", batch, 1);
        if (out.toString().contains(",")) {
            throw new CliException(ExitCodes.USAGE, "--out " + out + ": a schedule file's name cannot contain a comma, as "
                    + "schedule:FILE,allow=... could not name it");
        }
        Outputs.checkWritable(out, "--out", spec);
        Outputs.checkWritable(report, "--report", spec);
        PrintWriter stdout = spec.commandLine().getOut();
        try (Generator generator = common.load()) {
            sampler.configure(generator);
            if (generator.manifest().textConditioned()) {
                throw new CliException(ExitCodes.USAGE, "tune measures held-out images per class; "
                        + generator.manifest().name() + " is text-conditioned");
            }
            int classes = generator.config().numClasses();
            int[] heldoutLabels = SamplingOptions.repeat(all(classes), heldoutPerClass);
            List<Recording> train = new ArrayList<>();
            long[] trainSeeds;
            if (recorded) {
                trainSeeds = readRecordings(train);
            } else {
                int[] labels = SamplingOptions.repeat(all(classes), perClass);
                trainSeeds = new long[] {trainSeed, seedsEnd("--train-seed", trainSeed, labels.length)};
                Job job = job(labels, NoCache.INSTANCE, trainSeed);
                Map<String, String> meta = new LinkedHashMap<>();
                meta.put("model", generator.manifest().name());
                meta.put("sampler", sampler.samplerKind().id());
                meta.put("steps", Integer.toString(sampler.steps));
                meta.put("cfg", Double.toString(sampler.cfg));
                meta.put("seed", Long.toString(trainSeed));
                try (Progress progress = Progress.create(common.quiet, "record", sampler.steps, labels.length)) {
                    progress.phase("training images");
                    train.add(generator.record(job, progress, meta));
                }
            }
            ScheduleSearch.ClosedLoop closedLoop = null;
            if (closedLoopMoves > 0) {
                int[] labels = SamplingOptions.repeat(all(classes), closedLoopPerClass);
                trainSeeds[1] = Math.max(trainSeeds[1], seedsEnd("--train-seed", trainSeed, labels.length));
                closedLoop = closedLoop(generator, job(labels, NoCache.INSTANCE, trainSeed));
            }
            long heldoutEnd = seedsEnd("--heldout-seed", heldoutSeed, heldoutLabels.length);
            if (heldoutLabels.length > 0 && trainSeeds != null && heldoutSeed < trainSeeds[1]
                    && trainSeeds[0] < heldoutEnd) {
                throw new CliException(ExitCodes.USAGE, "the held-out seeds " + heldoutSeed + ".." + (heldoutSeed
                        + heldoutLabels.length - 1) + " overlap the training seeds " + trainSeeds[0] + ".." + (trainSeeds[1] - 1)
                        + (recorded ? "; move --heldout-seed" : "; move --heldout-seed or --train-seed"));
            }
            Progress[] bar = {Progress.NONE};
            ScheduleSearch search;
            try {
                ScheduleSearch.Builder builder = ScheduleSearch.builder(train, target).tunedFor(generator.modelDigest(), sampler.samplerKind().id())
                        .seed(searchSeed).evaluations(moves).timeLimit(Duration.ofSeconds(timeLimit))
                        .separateGuidanceHalves(separateHalves).wholeSteps(wholeSteps).listener((done, total, best) -> {
                            bar[0].step();
                            // Ctrl-C: the replay's moves are no generation, so nothing else would stop them
                            generator.cancelled().ifPresent(why -> {
                                throw new CliException(ExitCodes.CANCELLED, "tune cancelled after " + done + " of " + total
                                        + " evaluations: " + why);
                            });
                        });
                if (closedLoop != null) {
                    builder.closedLoop(closedLoop, closedLoopMoves).firstOrderStart(!singleStart);
                }
                search = builder.build();
            } catch (IllegalArgumentException e) {
                throw new CliException(ExitCodes.USAGE, e.getMessage(), e);
            }
            long t0 = System.nanoTime();
            ScheduleSearch.Result result;
            try (Progress progress = Progress.counting(common.quiet, "tune", search.plannedEvaluations(), "evaluations")) {
                progress.phase("search " + f("%.2fx", target));
                bar[0] = progress;
                result = search.run();
                progress.complete();
            }
            double searchSeconds = (System.nanoTime() - t0) / 1e9;
            ScheduleFiles.write(result.schedule(), out, "--out");
            String policySpec = "schedule:" + out;
            SchedulePolicy tuned = new SchedulePolicy(result.schedule(), out.toString(), Set.of());
            SchedulePolicy uniform = new SchedulePolicy(result.uniform());
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("spec", policySpec);
            r.put("target_speedup", target);
            r.put("flop_speedup", result.flopSpeedup());
            r.put("replay_estimate", result.estimate());
            r.put("forecast", result.schedule().forecast().toString());
            r.put("uniform_flop_speedup", result.uniform().flopSpeedup(generator.config()));
            r.put("uniform_replay_estimate", result.uniformEstimate());
            r.put("uniform_forecast", result.uniform().forecast().toString());
            r.put("model", generator.manifest().name());
            r.put("model_digest", generator.modelDigest());
            r.put("sampler", sampler.samplerKind().id());
            r.put("steps", sampler.steps);
            r.put("cfg", sampler.cfg);
            r.put("train_images", train.stream().mapToInt(Recording::images).sum());
            r.put("train_seeds", trainSeeds == null ? null : trainSeeds[0] + ".." + (trainSeeds[1] - 1));
            r.put("whole_steps", wholeSteps);
            r.put("search_seed", searchSeed);
            r.put("evaluations", result.evaluations());
            r.put("search_seconds", searchSeconds);
            if (closedLoop != null) {
                r.put("closed_loop_moves", closedLoopMoves);
                r.put("closed_loop_images", closedLoopPerClass * classes);
                r.put("closed_loop_start", result.firstOrderStarted() ? "first-order forecasts" : "every forecast");
                r.put("open_loop_train_psnr_db", -result.openLoopClosedError());
                r.put("train_psnr_db", -result.closedError());
            }
            r.put("timed_out", result.timedOut());
            if (heldoutLabels.length > 0) {
                heldout(generator, heldoutLabels, tuned, uniform, r);
            }
            print(stdout, r);
            if (report != null) {
                Outputs.writeJson(r, report, "--report");
                stdout.printf(Locale.ROOT, "wrote             %s%n", report);
            }
            stdout.printf(Locale.ROOT, "wrote             %s (use it as --policy %s)%n", out, policySpec);
            stdout.flush();
        }
        return ExitCodes.OK;
    }

    /** Uncached, uniform and tuned on the held-out seeds, interleaved after a warm-up: PSNR, class accuracy, wall time. */
    private void heldout(Generator generator, int[] labels, CachePolicy tuned, CachePolicy uniform, Map<String, Object> r) {
        Job base = job(labels, NoCache.INSTANCE, heldoutSeed);
        Map<String, CachePolicy> policies = new LinkedHashMap<>();
        policies.put("none", NoCache.INSTANCE);
        policies.put("uniform", uniform);
        policies.put("tuned", tuned);
        Map<String, Generator.Run> runs = new LinkedHashMap<>();
        try (Progress progress = Progress.create(common.quiet, "held-out", (long) (policies.size() + 1) * base.batches()
                * base.steps(), (policies.size() + 1) * labels.length)) {
            progress.phase("warm-up");
            generator.run(base.withPolicy(tuned), progress);
            for (Map.Entry<String, CachePolicy> e : policies.entrySet()) {
                progress.phase(e.getKey());
                runs.put(e.getKey(), generator.run(base.withPolicy(e.getValue()), progress));
            }
        }
        Generator.Run none = runs.get("none");
        r.put("heldout_seeds", heldoutSeed + ".." + (heldoutSeed + labels.length - 1));
        r.put("heldout_images", labels.length);
        r.put("heldout_psnr_db", Outputs.finite(ImageMetrics.meanPsnr(runs.get("tuned").images(), none.images())));
        r.put("uniform_heldout_psnr_db", Outputs.finite(ImageMetrics.meanPsnr(runs.get("uniform").images(), none.images())));
        generator.classifier().ifPresent(c -> {
            r.put("class_accuracy", Generator.accuracy(c, runs.get("tuned").images(), labels));
            r.put("uniform_class_accuracy", Generator.accuracy(c, runs.get("uniform").images(), labels));
            r.put("uncached_class_accuracy", Generator.accuracy(c, none.images(), labels));
        });
        r.put("heldout_flop_speedup", runs.get("tuned").stats().flopSpeedup());
        r.put("measured_speedup", (double) none.nanos() / runs.get("tuned").nanos());
        r.put("uniform_measured_speedup", (double) none.nanos() / runs.get("uniform").nanos());
        r.put("host", Host.describe());
    }

    /**
     * The closed-loop error: minus the mean PSNR (dB) of the job's images generated with a
     * schedule, against the same images uncached (generated once, here).
     */
    private ScheduleSearch.ClosedLoop closedLoop(Generator generator, Job uncached) {
        ImageBatch reference;
        try (Progress progress = Progress.create(common.quiet, "closed-loop", uncached.batches() * (long) uncached.steps(),
                uncached.labels().length)) {
            progress.phase("uncached training images");
            reference = generator.run(uncached, progress).images();
        }
        return schedule -> -ImageMetrics.meanPsnr(generator.run(uncached.withPolicy(new SchedulePolicy(schedule)),
                Progress.NONE).images(), reference);
    }

    private Job job(int[] labels, CachePolicy policy, long seed) {
        return new Job(labels, sampler.samplerKind(), sampler.steps, sampler.cfg, policy, seed, batch, Forward.CACHED,
                !sampler.noFiniteCheck);
    }

    /** Reads {@code --recording}; the seeds they cover if every one names its seed, else null. */
    private long[] readRecordings(List<Recording> train) {
        long from = Long.MAX_VALUE;
        long to = Long.MIN_VALUE;
        boolean seeds = true;
        for (Path p : recordings) {
            Inputs.checkReadable(p, "--recording");
            Recording rec;
            try {
                rec = Recording.read(p);
            } catch (IOException e) {
                throw Inputs.unreadable("--recording", p, e);
            }
            String sampled = rec.metadata().get("sampler");
            if (rec.steps() != sampler.steps || (sampled != null && !sampled.equals(sampler.samplerKind().id()))) {
                throw new CliException(ExitCodes.USAGE, "--recording " + p + " was recorded with " + sampled + " "
                        + rec.steps() + " steps, not " + sampler.samplerKind().id() + " " + sampler.steps);
            }
            String seed = rec.metadata().get("seed");
            if (seed == null) {
                seeds = false;
            } else {
                long s = Long.parseLong(seed);
                from = Math.min(from, s);
                to = Math.max(to, s + rec.images());
            }
            train.add(rec);
        }
        return seeds ? new long[] {from, to} : null;
    }

    /** The end (exclusive) of {@code n} seeds from {@code first}, refusing a range past the largest seed. */
    private static long seedsEnd(String option, long first, int n) {
        try {
            return Math.addExact(first, n);
        } catch (ArithmeticException e) {
            throw new CliException(ExitCodes.USAGE, option + " " + first + ": its " + n + " seeds would pass the largest seed "
                    + Long.MAX_VALUE, e);
        }
    }

    private static int[] all(int classes) {
        int[] out = new int[classes];
        for (int i = 0; i < classes; i++) {
            out[i] = i;
        }
        return out;
    }

    private static void print(PrintWriter out, Map<String, Object> r) {
        for (Map.Entry<String, Object> e : r.entrySet()) {
            Object v = e.getValue();
            out.printf(Locale.ROOT, "%-26s %s%n", e.getKey(), v instanceof Double d ? f("%.4f", d) : String.valueOf(v));
        }
    }
}
