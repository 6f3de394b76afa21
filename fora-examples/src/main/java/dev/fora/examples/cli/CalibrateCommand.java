package dev.fora.examples.cli;

import dev.fora.core.cache.NoCache;
import dev.fora.core.calibration.Calibration;
import dev.fora.core.calibration.CalibrationException;
import dev.fora.core.recording.Recording;
import dev.fora.examples.engine.Generator;
import dev.fora.examples.engine.Generator.Job;
import dev.fora.examples.metrics.ImageMetrics;
import dev.fora.examples.progress.Progress;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code fora calibrate}: the threshold (and TeaCache's polynomial) that gives a target speed-up on this model. */
@Command(name = "calibrate", sortOptions = false, mixinStandardHelpOptions = true,
        description = {"Calibrate a threshold policy to a target FLOP-bound speed-up for this model, sampler and step count.",
                "Records the uncached run of a few calibration images, fits TeaCache's rescaling polynomial to it "
                + "(teacache), then searches the threshold with real cached runs of the calibration images until their "
                + "FLOP-bound speed-up is within 1 %% of the target. Checks the result on held-out images (other seeds) "
                + "and prints the spec string to use; --json writes the calibration."},
        footer = {"", "Example: fora calibrate --policy teacache --target-speedup 3 --json teacache-ddim50.json"})
public final class CalibrateCommand implements Callable<Integer> {

    /** Seed offset of the held-out images. */
    static final long HELD_OUT_SEED_OFFSET = 1_000_000L;

    @Spec
    CommandSpec spec;

    @Option(names = "--policy", paramLabel = "NAME", required = true, completionCandidates = Policies.Calibratable.class,
            description = "The policy to calibrate: ${COMPLETION-CANDIDATES}.")
    String policy;

    @Option(names = "--target-speedup", paramLabel = "X", required = true,
            description = "FLOP-bound speed-up to reach (> 1).")
    double target;

    @Option(names = "--images", paramLabel = "N", defaultValue = "20",
            description = "Calibration images, classes (or prompts) in turn (default: ${DEFAULT-VALUE}); as many held-out images.")
    int images;

    @Option(names = "--max-skips", paramLabel = "K", defaultValue = "3",
            description = "magcache: the most steps skipped in a row (default: ${DEFAULT-VALUE}).")
    int maxSkips;

    @Option(names = "--degree", paramLabel = "D", defaultValue = "2",
            description = "teacache: degree of the rescaling polynomial (default: ${DEFAULT-VALUE}).")
    int degree;

    @Option(names = "--json", paramLabel = "FILE", description = "Write the calibration as JSON.")
    Path json;

    @Mixin
    SamplerOptions sampler;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0",
            description = "Seed of the calibration images (image i: S + i); held-out images use S + 1000000 + i "
                    + "(default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "32",
            description = "Images per generation call (default: ${DEFAULT-VALUE}).")
    int batch;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() {
        sampler.check();
        Checks.atLeast("--images", images, 2);
        Checks.atLeast("--batch", batch, 1);
        long maxSeed = Long.MAX_VALUE - HELD_OUT_SEED_OFFSET - (images - 1);
        if (seed > maxSeed) {
            throw new CliException(ExitCodes.USAGE, "--seed must be <= " + maxSeed + " (the held-out images use S + "
                    + HELD_OUT_SEED_OFFSET + " + i for i < --images), got " + seed);
        }
        Calibration.Builder calibration;
        try {
            calibration = Calibration.of(policy).targetSpeedup(target).maxSkips(maxSkips).polynomialDegree(degree);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, e.getMessage(), e);
        }
        Outputs.checkWritable(json, "--json", spec);
        try (Generator generator = common.load()) {
            sampler.configure(generator);
            int rows = generator.rows(); // classes, or the prompts of a text-conditioned model
            int[] labels = new int[images];
            for (int i = 0; i < images; i++) {
                labels[i] = i % rows;
            }
            Job base = new Job(labels, sampler.samplerKind(), sampler.steps, sampler.cfg, NoCache.INSTANCE, seed, batch,
                    dev.fora.djl.GenerationRequest.Forward.CACHED, !sampler.noFiniteCheck);
            Job heldOut = base.withSeed(seed + HELD_OUT_SEED_OFFSET);
            int fit = Math.min(images, 8);
            Calibration.Result result;
            Generator.Run verified;
            Generator.Run verifiedNone;
            List<double[]> trace = new ArrayList<>();
            java.util.function.Consumer<String> progress = common.quiet ? m -> { } : m -> {
                System.err.println("calibrate: " + m);
                System.err.flush();
            };
            {
                progress.accept("recording " + fit + " uncached images");
                Recording recording = generator.record(base.withLabels(Arrays.copyOf(labels, fit)), Progress.NONE,
                        Map.of("sampler", sampler.samplerKind().id()));
                try {
                    result = calibration.run(recording, p -> {
                        double s = generator.run(base.withPolicy(p), Progress.NONE).stats().flopSpeedup();
                        progress.accept(String.format(Locale.ROOT, "probe %d: %s -> %.3fx", trace.size() + 1,
                                p.spec().orElse("?"), s));
                        trace.add(new double[] {s});
                        return s;
                    });
                } catch (CalibrationException e) {
                    throw new CliException(ExitCodes.USAGE, e.getMessage(), e);
                }
                progress.accept("held-out images");
                verified = generator.run(heldOut.withPolicy(result.policy()), Progress.NONE);
                verifiedNone = generator.run(heldOut, Progress.NONE);
            }
            report(generator, result, verified, verifiedNone);
        }
        return ExitCodes.OK;
    }

    private void report(Generator generator, Calibration.Result r, Generator.Run heldOut, Generator.Run heldOutNone) {
        PrintWriter stdout = spec.commandLine().getOut();
        double held = heldOut.stats().flopSpeedup();
        double heldError = held / target - 1;
        double psnr = ImageMetrics.meanPsnr(heldOut.images(), heldOutNone.images());
        stdout.printf(Locale.ROOT, "model             %s (%s), %s %d steps, cfg %s%n", generator.manifest().name(),
                generator.directory(), sampler.samplerKind(), sampler.steps, GenerateCommand.fmt(sampler.cfg));
        if (r.polynomial().length > 0) {
            stdout.printf(Locale.ROOT, "polynomial        rescale(x) = %s (R^2 %.3f over %d steps x images)%n",
                    polynomial(r.polynomial()), r.fitRSquared(), r.fitPoints());
        }
        stdout.printf(Locale.ROOT, "threshold         %s (%d probe runs)%n", r.threshold(), r.probes().size());
        stdout.printf(Locale.ROOT, "calibration       %d images, seed %d: %.3fx (target %.3fx, %+.1f %%)%n", images, seed,
                r.speedup(), target, 100 * r.relativeError());
        stdout.printf(Locale.ROOT, "held out          %d images, seed %d: %.3fx (%+.1f %%, %s), PSNR %.2f dB against uncached%n",
                images, seed + HELD_OUT_SEED_OFFSET, held, 100 * heldError, Math.abs(heldError) <= 0.05 ? "within 5 %"
                        : "NOT within 5 %", psnr);
        stdout.printf(Locale.ROOT, "spec              %s%n", r.spec());
        if (json != null) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("model", generator.manifest().name());
            o.put("policy", r.policyName());
            o.put("spec", r.spec());
            o.put("target_speedup", target);
            o.put("threshold", r.threshold());
            o.put("polynomial_ascending", r.polynomial());
            o.put("fit_r2", Outputs.finite(r.fitRSquared()));
            o.put("fit_points", r.fitPoints());
            o.put("max_skips", r.policyName().equals("magcache") ? maxSkips : null);
            o.put("sampler", sampler.samplerKind().id());
            o.put("steps", sampler.steps);
            o.put("cfg", sampler.cfg);
            Map<String, Object> cal = new LinkedHashMap<>();
            cal.put("images", images);
            cal.put("seed", seed);
            cal.put("flop_speedup", r.speedup());
            cal.put("relative_error", r.relativeError());
            List<Map<String, Object>> probes = new ArrayList<>();
            for (Calibration.Probe p : r.probes()) {
                probes.add(Map.of("threshold", p.threshold(), "flop_speedup", p.speedup()));
            }
            cal.put("probes", probes);
            o.put("calibration", cal);
            Map<String, Object> ho = new LinkedHashMap<>();
            ho.put("images", images);
            ho.put("seed", seed + HELD_OUT_SEED_OFFSET);
            ho.put("flop_speedup", held);
            ho.put("relative_error", heldError);
            ho.put("within_5_percent", Math.abs(heldError) <= 0.05);
            ho.put("psnr_db", Outputs.finite(psnr));
            o.put("held_out", ho);
            Outputs.writeJson(o, json, "--json");
            stdout.printf(Locale.ROOT, "wrote             %s%n", json);
        }
        stdout.flush();
    }

    private static String polynomial(double[] c) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < c.length; i++) {
            if (i > 0) {
                sb.append(c[i] < 0 ? " - " : " + ");
            } else if (c[i] < 0) {
                sb.append('-');
            }
            sb.append(java.math.BigDecimal.valueOf(Math.abs(c[i])).stripTrailingZeros().toPlainString())
                    .append(i == 0 ? "" : i == 1 ? " x" : " x^" + i);
        }
        return sb.toString();
    }
}
