package dev.fora.examples.cli;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.examples.engine.Generator;
import dev.fora.examples.engine.Generator.Job;
import dev.fora.examples.image.ImageBatch;
import dev.fora.examples.image.ImageGrid;
import dev.fora.examples.progress.Progress;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
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

/** {@code fora generate}: sample images of some classes under one cache policy and write a PNG grid. */
@Command(name = "generate", sortOptions = false, mixinStandardHelpOptions = true,
        description = {"Generate images under one cache policy and write them as a PNG grid.",
                "Rows of the grid: classes; columns: samples per class.",
                "Prints the wall time, the compute fraction (branch evaluations computed / all) and the FLOP-bound "
                + "speed-up (block FLOPs of an uncached run / block FLOPs computed)."},
        footer = {"", "Example: fora generate --all-classes --per-class 4 --policy fora:3 --out grid.png"})
public final class GenerateCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Mixin
    SamplingOptions sampling;

    @Option(names = "--policy", paramLabel = "SPEC", defaultValue = "fora:3",
            description = "Cache policy spec (default: ${DEFAULT-VALUE}; none = no caching).")
    String policy;

    @Option(names = {"-o", "--out"}, paramLabel = "FILE", defaultValue = "generate.png",
            description = "PNG grid to write (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the run's figures as JSON.")
    Path json;

    @Option(names = "--images", paramLabel = "DIR",
            description = "Also write every image as its own PNG at its own size: DIR/image_<i>.png, i counted row by row.")
    Path imagesDir;

    @Mixin
    GridOptions grid;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() {
        sampling.validate();
        CachePolicy cachePolicy = Policies.parse(policy);
        Outputs.checkWritable(out, "--out", spec);
        Outputs.checkWritable(json, "--json", spec);
        grid.validate();
        if (imagesDir != null && !java.nio.file.Files.isDirectory(imagesDir)) {
            throw new CliException(ExitCodes.OUTPUT, "--images: " + imagesDir + " is not a directory");
        }
        try (Generator generator = common.load()) {
            sampling.samplerOptions.configure(generator);
            int[] rowLabels = sampling.distinctRows(generator);
            if (imagesDir != null) {
                for (int i = 0; i < rowLabels.length * sampling.perClass; i++) {
                    Outputs.checkWritable(imageFile(i), "--images", spec);
                }
            }
            Generator.Run run = run(generator, rowLabels, cachePolicy);
            report(generator, rowLabels, run, CachePolicies.toSpec(cachePolicy));
        }
        return ExitCodes.OK;
    }

    /** Every label of {@code rowLabels} {@code --per-class} times, with a progress bar. */
    private Generator.Run run(Generator generator, int[] rowLabels, CachePolicy cachePolicy) {
        int[] labels = SamplingOptions.repeat(rowLabels, sampling.perClass);
        Job job = sampling.job(labels, cachePolicy);
        try (Progress progress = Progress.create(common.quiet, "generate", (long) job.batches() * job.steps(),
                labels.length)) {
            progress.phase(policy);
            return generator.run(job, progress);
        }
    }

    /** The grid (a row per class), the figures on stdout and the JSON. */
    private void report(Generator generator, int[] rowLabels, Generator.Run run, String policySpec) {
        PrintWriter stdout = spec.commandLine().getOut();
        int per = sampling.perClass;
        ImageBatch all = run.images();
        List<ImageBatch> rows = new ArrayList<>();
        List<String> rowNames = new ArrayList<>();
        for (int r = 0; r < rowLabels.length; r++) {
            float[] values = new float[per * all.imageSize()];
            System.arraycopy(all.values(), r * per * all.imageSize(), values, 0, values.length);
            rows.add(new ImageBatch(values, per, all.channels(), all.height(), all.width()));
            rowNames.add(className(generator, rowLabels[r]));
        }
        Outputs.writeGrid(grid.grid(all.height()), rows, rowNames, out, "--out");
        if (imagesDir != null) {
            for (int i = 0; i < all.count(); i++) {
                float[] one = new float[all.imageSize()];
                System.arraycopy(all.values(), i * all.imageSize(), one, 0, one.length);
                Outputs.writeGrid(new ImageGrid(1, 0), List.of(new ImageBatch(one, 1, all.channels(), all.height(),
                        all.width())), null, imageFile(i), "--images");
            }
        }

        int images = all.count();
        stdout.printf(Locale.ROOT, "model             %s (%s)%n", generator.manifest().name(), generator.directory());
        boolean text = generator.prompts().isPresent();
        stdout.printf(Locale.ROOT, "images            %d (%s x %d), %s %d steps, cfg %s, seed %d%n",
                images, plural(rowLabels.length, text ? "prompt" : "class", text ? "prompts" : "classes"), per,
                sampling.samplerKind(), sampling.samplerOptions.steps, fmt(sampling.samplerOptions.cfg), sampling.seed);
        stdout.printf(Locale.ROOT, "policy            %s%n", policySpec);
        stdout.printf(Locale.ROOT, "wall time         %.3f s (%.1f ms/image)%n", run.nanos() / 1e9, run.msPerImage());
        stdout.printf(Locale.ROOT, "compute fraction  %.3f (%d of %d steps full)%n", run.stats().computeFraction(),
                run.stats().fullSteps(), sampling.samplerOptions.steps);
        stdout.printf(Locale.ROOT, "FLOP-bound speedup %.2fx%n", run.stats().flopSpeedup());
        stdout.printf(Locale.ROOT, "peak cache        %s%n", bytes(run.stats().peakCacheBytes()));
        if (run.decodeNanos() > 0) {
            stdout.printf(Locale.ROOT, "decoder           %dx%d images; %.3f s of the wall time (%.1f ms/image)%n", all.width(),
                    all.height(), run.decodeNanos() / 1e9, run.decodeMsPerImage());
        }
        stdout.printf(Locale.ROOT, "wrote             %s (%s x %s)%n", out, plural(rows.size(), "row", "rows"),
                plural(per, "column", "columns"));
        if (json != null) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("model", generator.manifest().name());
            o.put("policy", policySpec);
            o.put("sampler", sampling.samplerKind().id());
            o.put("steps", sampling.samplerOptions.steps);
            o.put("cfg", sampling.samplerOptions.cfg);
            o.put("seed", sampling.seed);
            o.put("images", images);
            o.put("labels", SamplingOptions.repeat(rowLabels, per));
            o.put("wall_ms", run.nanos() / 1e6);
            o.put("ms_per_image", run.msPerImage());
            o.put("compute_fraction", run.stats().computeFraction());
            o.put("flop_speedup", run.stats().flopSpeedup());
            o.put("cache_bytes_peak", run.stats().peakCacheBytes());
            o.put("decode_ms_per_image", run.decodeMsPerImage());
            o.put("image_shape", new int[] {all.channels(), all.height(), all.width()});
            o.put("out", out.toString());
            Outputs.writeJson(o, json, "--json");
            stdout.printf(Locale.ROOT, "wrote             %s%n", json);
        }
        stdout.flush();
    }

    static String className(Generator generator, int label) {
        return generator.rowName(label);
    }

    private Path imageFile(int i) {
        return imagesDir.resolve("image_" + i + ".png");
    }

    static String plural(int n, String one, String many) {
        return n + " " + (n == 1 ? one : many);
    }

    static String fmt(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e9 ? String.format(Locale.ROOT, "%.1f", v) : Double.toString(v);
    }

    static String bytes(long b) {
        if (b < 1024) {
            return b + " B";
        }
        if (b < 1024 * 1024) {
            return String.format(Locale.ROOT, "%.1f KiB", b / 1024.0);
        }
        return String.format(Locale.ROOT, "%.1f MiB", b / (1024.0 * 1024.0));
    }
}
