package dev.fora.examples.cli;

import static dev.fora.examples.cli.Table.f;

import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.NoCache;
import dev.fora.djl.GenerationRequest.Forward;
import dev.fora.core.sampling.SamplerKind;
import dev.fora.examples.engine.Generator;
import dev.fora.examples.engine.Generator.Job;
import dev.fora.examples.engine.RunStats;
import dev.fora.examples.metrics.Summary;
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

/** {@code fora bench}: timed repeated generations of any exported model, uncached and cached. */
@Command(name = "bench", sortOptions = false, mixinStandardHelpOptions = true,
        description = {"Benchmark a model: ms per image uncached and cached, measured vs FLOP-bound speed-up, "
                + "component overhead.",
                "Times repeated generations of one batch: the whole-model TorchScript forward (uncached "
                + "baseline), the component path without cache (none) and each --policy, interleaved per repeat "
                + "after --warmup untimed rounds.",
                "Reports the median, quartiles and extremes of ms per image, the measured speed-up (median of none / "
                + "median of the policy) next to the FLOP-bound speed-up, and the component overhead (median of none "
                + "/ median of the whole-model forward): what running the model stage by stage costs by itself.",
                "'vs fastest' is the speed-up against the faster of the two uncached paths, 'of bound' that speed-up "
                + "over the FLOP bound, and 'cached step' the median wall time of a step that computed nothing over "
                + "that of a step that computed everything (both measured per step in the same runs)."},
        footer = {"", "Example: fora bench --model /tmp/dit-xl-2 --steps 20 --batch 1 --repeats 3 --warmup 1"})
public final class BenchCommand implements Callable<Integer> {

    private static final String WHOLE = "whole-model forward";

    @Spec
    CommandSpec spec;

    @Option(names = "--policy", paramLabel = "SPEC", defaultValue = "fora:3",
            description = "Cache policy specs; repeat or separate by commas (default: ${DEFAULT-VALUE}).")
    List<String> policies;

    @Mixin
    SamplerOptions sampler;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "8",
            description = "Images per generation (labels 0, 1, ... cycling through the classes, or through the prompts "
                    + "of --text-embeddings) "
                    + "(default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Noise seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--repeats", paramLabel = "R", defaultValue = "5",
            description = "Timed rounds (default: ${DEFAULT-VALUE}).")
    int repeats;

    @Option(names = "--warmup", paramLabel = "W", defaultValue = "1",
            description = "Untimed rounds first (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write one JSON object per policy (an array).")
    Path json;

    @Option(names = "--clients", paramLabel = "N", defaultValue = "0",
            description = "Serving bench instead: N closed-loop clients of single-image requests, through the"
                    + " continuous-batching service, one request at a time, and as static batches of N, side by side;"
                    + " a mix (several policies or --mix-steps) also beside the uniform run: every request the first"
                    + " --policy at --steps (default: off). See docs/serving.md.")
    int clients;

    @Option(names = "--requests", paramLabel = "R", defaultValue = "4",
            description = "With --clients: requests per client per round (default: ${DEFAULT-VALUE}).")
    int requestsPerClient;

    @Option(names = "--mix-steps", paramLabel = "K,K...",
            description = "With --clients: step counts the requests cycle through (default: --steps).")
    String mixSteps;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() {
        if (clients > 0) {
            return callClients();
        }
        SamplerKind kind = sampler.samplerKind();
        sampler.checkSteps();
        Checks.atLeast("--batch", batch, 1);
        Checks.atLeast("--repeats", repeats, 1);
        Checks.atLeast("--warmup", warmup, 0);
        sampler.checkCfg();
        Map<String, CachePolicy> specs = Policies.noneAnd(policies);
        List<String> dtypes = dtypes();
        Outputs.checkWritable(json, "--json", spec);
        List<Generator> generators = new ArrayList<>();
        try {
            for (String d : dtypes) {
                Generator g = common.load(d);
                generators.add(g);
                sampler.configure(g);
            }
            List<Timings> timings = run(generators, kind, specs);
            List<Map<String, Object>> array = new ArrayList<>();
            for (int i = 0; i < dtypes.size(); i++) {
                array.addAll(report(generators.get(i), dtypes.get(i), specs.keySet(), timings.get(i)));
            }
            if (dtypes.size() > 1) {
                reportAcross(dtypes, timings, array);
            }
            if (json != null) {
                Outputs.writeJson(array, json, "--json");
                spec.commandLine().getOut().printf(Locale.ROOT, "wrote %s%n", json);
                spec.commandLine().getOut().flush();
            }
        } finally {
            for (Generator g : generators) {
                g.close();
            }
        }
        return ExitCodes.OK;
    }

    /** {@code --dtype}: one number format, or several separated by commas (each once). */
    private List<String> dtypes() {
        List<String> out = new ArrayList<>();
        for (String d : common.dtype.split(",", -1)) {
            String t = d.strip();
            if (out.contains(t)) {
                throw new CliException(ExitCodes.USAGE, "--dtype names " + t + " twice: " + common.dtype);
            }
            out.add(t);
        }
        return out;
    }

    /**
     * With several {@code --dtype}s: every path's median in each number format and its speed-up
     * over the first format's same path (measured in the same interleaved rounds); the JSON
     * objects of the other formats get it as {@code speedup_vs_<first>}.
     */
    private void reportAcross(List<String> dtypes, List<Timings> timings, List<Map<String, Object>> array) {
        PrintWriter stdout = spec.commandLine().getOut();
        String first = dtypes.get(0);
        List<String> header = new ArrayList<>(List.of("path / policy", first + " ms/img"));
        for (String d : dtypes.subList(1, dtypes.size())) {
            header.add(d + " ms/img");
            header.add(d + " vs " + first);
        }
        Table t = new Table(header.toArray(String[]::new));
        for (String path : timings.get(0).msPerImage().keySet()) {
            double base = Summary.of(timings.get(0).msPerImage().get(path)).median();
            List<String> row = new ArrayList<>(List.of(path, f("%.2f", base)));
            for (int i = 1; i < dtypes.size(); i++) {
                double m = Summary.of(timings.get(i).msPerImage().get(path)).median();
                row.add(f("%.2f", m));
                row.add(f("%.2fx", base / m));
                for (Map<String, Object> o : array) {
                    if (o.get("dtype").equals(dtypes.get(i)) && o.get("policy").equals(path)) {
                        o.put("speedup_vs_" + first, base / m);
                    }
                }
            }
            t.row(row.toArray(String[]::new));
        }
        stdout.printf(Locale.ROOT, "number formats side by side (rounds interleaved; speed-up over %s on the same path):%n",
                first);
        stdout.print(t.render());
        stdout.flush();
    }

    /** {@code --clients}: the serving bench (see {@link ClientsBench}). */
    private Integer callClients() {
        SamplerKind kind = sampler.check();
        Checks.atLeast("--requests", requestsPerClient, 1);
        Checks.atLeast("--repeats", repeats, 1);
        Checks.atLeast("--warmup", warmup, 0);
        int[] steps = mixSteps == null ? new int[] {sampler.steps} : ClientsBench.parseSteps(mixSteps);
        Map<String, CachePolicy> specs = new LinkedHashMap<>();
        for (String v : policies) {
            for (String p : dev.fora.core.cache.CachePolicies.split(v)) {
                specs.putIfAbsent(p, Policies.parse(p));
            }
        }
        Outputs.checkWritable(json, "--json");
        try (Generator generator = common.load()) {
            if (generator.prompts().isPresent() || !(generator.config().conditioning()
                    instanceof dev.fora.core.model.ConditioningSpec.Classes)) {
                throw new CliException(ExitCodes.USAGE, "--clients benches a class-conditional model");
            }
            List<ClientsBench.Image> images = ClientsBench.images(clients, requestsPerClient, generator.rows(), seed, specs,
                    steps);
            // a mix is also compared with the uniform run, served beside it in every round
            String uniformSpec = specs.keySet().iterator().next();
            List<ClientsBench.Image> uniform = specs.size() == 1 && steps.length == 1 && steps[0] == sampler.steps ? null
                    : ClientsBench.images(clients, requestsPerClient, generator.rows(), seed,
                            Map.of(uniformSpec, specs.get(uniformSpec)), new int[] {sampler.steps});
            ClientsBench bench = new ClientsBench(generator.pipeline(), kind, sampler.cfg, clients, images, uniform);
            long totalSteps = 0;
            for (ClientsBench.Image i : images) {
                totalSteps += 3L * i.steps();
            }
            int paths = uniform == null ? 3 : 4;
            totalSteps += uniform == null ? 0 : (long) uniform.size() * sampler.steps;
            ClientsBench.Result r;
            try (Progress progress = Progress.create(common.quiet, "bench", totalSteps * (warmup + repeats),
                    paths * images.size() * (warmup + repeats))) {
                r = bench.run(warmup, repeats, progress);
            } catch (Exception e) {
                if (e instanceof RuntimeException re) {
                    throw re;
                }
                throw new IllegalStateException(e);
            }
            reportClients(generator, kind, specs.keySet(), steps, images.size(), uniform == null ? null : uniformSpec, r);
        }
        return ExitCodes.OK;
    }

    private void reportClients(Generator generator, SamplerKind kind, java.util.Set<String> specs, int[] steps, int images,
            String uniformSpec, ClientsBench.Result r) {
        PrintWriter stdout = spec.commandLine().getOut();
        String threads = System.getProperty("ai.djl.pytorch.num_threads", "default");
        stdout.printf(Locale.ROOT, "model %s; %d clients x %d requests of 1 image; policies %s; steps %s; %s, cfg %s; "
                + "%d warm-up + %d timed rounds; %d cores, libtorch threads %s%n", generator.manifest().name(), clients,
                requestsPerClient, String.join(",", specs), java.util.Arrays.toString(steps), kind,
                GenerateCommand.fmt(sampler.cfg), warmup, repeats, Runtime.getRuntime().availableProcessors(), threads);
        Table rounds = new Table("round", "continuous img/s", "one at a time", "static batches", "continuous / one at a time",
                "continuous / static", "p95 / static batch wall", "continuous / uniform run");
        for (int i = 0; i < r.rounds().size(); i++) {
            ClientsBench.Round o = r.rounds().get(i);
            rounds.row(String.valueOf(i + 1), f("%.2f", o.continuousImagesPerS()), f("%.2f", o.oneAtATimeImagesPerS()),
                    f("%.2f", o.staticBatchImagesPerS()), f("%.2fx", o.continuousVsOneAtATime()),
                    f("%.2f", o.continuousVsStaticBatch()),
                    Double.isNaN(o.staticBatchWallMs()) ? "-" : f("%.2fx", o.latencyP95VsStaticBatchWall()),
                    uniformSpec == null ? "-" : f("%.2f", o.continuousVsUniform()));
        }
        stdout.print(rounds.render());
        Table t = new Table("path (median of rounds)", "images/s", "vs one at a time", "CPU ms per image");
        t.row("continuous batching", f("%.2f", r.continuousImagesPerS()), f("%.2fx", r.continuousVsOneAtATime()),
                f("%.1f", r.continuousCpuMs()));
        t.row("one at a time", f("%.2f", r.oneAtATimeImagesPerS()), "1.00x", f("%.1f", r.oneAtATimeCpuMs()));
        t.row("static batches of " + clients, f("%.2f", r.staticBatchImagesPerS()), f("%.2fx", r.staticBatchVsOneAtATime()),
                f("%.1f", r.staticBatchCpuMs()));
        stdout.print(t.render());
        stdout.printf(Locale.ROOT, "continuous / static batch %.2f (by CPU time %.2f); latency p50 %.0f ms, p95 %.0f ms, "
                + "p95 / static batch wall %.2fx (static batch of %d: %.0f ms); %.1f rows per pass; largest pixel difference "
                + "vs the image alone: %d/255%n", r.continuousVsStaticBatch(), r.staticBatchCpuMs() / r.continuousCpuMs(),
                r.latencyP50Ms(), r.latencyP95Ms(), r.latencyP95VsStaticBatchWall(), clients, r.staticBatchWallMs(),
                r.rowsPerPass(), r.maxPixelDiff());
        if (uniformSpec != null) {
            stdout.printf(Locale.ROOT, "the uniform run beside it (%s, %d steps): %.2f images/s; continuous / uniform run %.2f%n",
                    uniformSpec, sampler.steps, r.uniformImagesPerS(), r.continuousVsUniform());
        }
        if (json != null) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("model", generator.manifest().name());
            o.put("host", Host.describe());
            o.put("libtorch_threads", threads);
            o.put("clients", clients);
            o.put("requests_per_client", requestsPerClient);
            o.put("images", images);
            o.put("sampler", kind.id());
            o.put("cfg", sampler.cfg);
            o.put("policy_mix", new ArrayList<>(specs));
            o.put("steps_mix", steps);
            o.put("warmup", warmup);
            o.put("repeats", repeats);
            o.put("continuous_images_per_s", r.continuousImagesPerS());
            o.put("one_at_a_time_images_per_s", r.oneAtATimeImagesPerS());
            o.put("static_batch_images_per_s", r.staticBatchImagesPerS());
            o.put("continuous_vs_one_at_a_time", r.continuousVsOneAtATime());
            o.put("continuous_vs_static_batch", r.continuousVsStaticBatch());
            o.put("continuous_cpu_ms_per_image", r.continuousCpuMs());
            o.put("one_at_a_time_cpu_ms_per_image", r.oneAtATimeCpuMs());
            o.put("static_batch_cpu_ms_per_image", r.staticBatchCpuMs());
            o.put("continuous_vs_static_batch_by_cpu", r.staticBatchCpuMs() / r.continuousCpuMs());
            o.put("latency_p50_ms", r.latencyP50Ms());
            o.put("latency_p95_ms", r.latencyP95Ms());
            o.put("static_batch_wall_ms", Double.isNaN(r.staticBatchWallMs()) ? null : r.staticBatchWallMs()); // no full batch in a mix
            o.put("latency_p95_vs_static_batch_wall", Double.isNaN(r.staticBatchWallMs()) ? null : r.latencyP95VsStaticBatchWall());
            o.put("rows_per_pass", r.rowsPerPass());
            o.put("max_pixel_diff_vs_alone", r.maxPixelDiff());
            if (uniformSpec != null) {
                o.put("uniform_policy", uniformSpec);
                o.put("uniform_steps", sampler.steps);
                o.put("uniform_continuous_images_per_s", r.uniformImagesPerS());
                o.put("continuous_vs_uniform", r.continuousVsUniform());
            }
            List<Map<String, Object>> perRound = new ArrayList<>();
            for (ClientsBench.Round round : r.rounds()) {
                Map<String, Object> x = new LinkedHashMap<>();
                x.put("continuous_images_per_s", round.continuousImagesPerS());
                x.put("one_at_a_time_images_per_s", round.oneAtATimeImagesPerS());
                x.put("static_batch_images_per_s", round.staticBatchImagesPerS());
                x.put("latency_p95_ms", round.latencyP95Ms());
                x.put("static_batch_wall_ms", Double.isNaN(round.staticBatchWallMs()) ? null : round.staticBatchWallMs());
                if (uniformSpec != null) {
                    x.put("uniform_continuous_images_per_s", round.uniformImagesPerS());
                }
                perRound.add(x);
            }
            o.put("rounds", perRound);
            Outputs.writeJson(o, json, "--json");
            stdout.printf(Locale.ROOT, "wrote %s%n", json);
        }
        stdout.flush();
    }

    /**
     * The timed rounds.
     *
     * @param msPerImage per path / policy, ms per image of every timed round
     * @param stats per path / policy, the cache statistics of its first timed round
     * @param maxDiff the largest difference between the staged and the whole-model forward, uncached
     */
    private record Timings(Map<String, List<Double>> msPerImage, Map<String, RunStats> stats, double maxDiff,
            Map<String, List<Double>> decodeMsPerImage) {
    }

    /**
     * Warm-up and timed rounds; in each round every generator (number format) in turn runs the
     * whole-model path and every policy once, in turn.
     */
    private List<Timings> run(List<Generator> generators, SamplerKind kind, Map<String, CachePolicy> specs) {
        int classes = generators.get(0).rows();
        int[] labels = new int[batch];
        for (int i = 0; i < batch; i++) {
            labels[i] = i % classes;
        }
        Job base = new Job(labels, kind, sampler.steps, sampler.cfg, NoCache.INSTANCE, seed, batch, Forward.CACHED,
                !sampler.noFiniteCheck);
        Map<String, Job> jobs = new LinkedHashMap<>();
        jobs.put(WHOLE, base.withPath(Forward.WHOLE_MODEL));
        for (Map.Entry<String, CachePolicy> e : specs.entrySet()) {
            jobs.put(e.getKey(), base.withPolicy(e.getValue()));
        }
        int n = generators.size();
        List<Map<String, List<Double>>> msPerImage = new ArrayList<>();
        List<Map<String, RunStats>> stats = new ArrayList<>();
        List<Map<String, List<Double>>> decodeMs = new ArrayList<>();
        List<Map<String, Generator.Run>> first = new ArrayList<>();
        for (int g = 0; g < n; g++) {
            Map<String, List<Double>> ms = new LinkedHashMap<>();
            Map<String, List<Double>> dec = new LinkedHashMap<>();
            jobs.keySet().forEach(k -> ms.put(k, new ArrayList<>()));
            jobs.keySet().forEach(k -> dec.put(k, new ArrayList<>()));
            msPerImage.add(ms);
            decodeMs.add(dec);
            stats.add(new LinkedHashMap<>());
            first.add(new LinkedHashMap<>());
        }
        int rounds = warmup + repeats;
        try (Progress progress = Progress.create(common.quiet, "bench", (long) rounds * n * jobs.size() * sampler.steps,
                rounds * n * jobs.size() * batch)) {
            for (int round = 0; round < rounds; round++) {
                for (int g = 0; g < n; g++) {
                    int at = g;
                    Rounds.round(generators.get(g), n > 1 ? dtypes().get(g) + " " : "", jobs, job -> job, round, warmup,
                            progress, (repeat, path, run) -> {
                                msPerImage.get(at).get(path).add(run.msPerImage());
                                decodeMs.get(at).get(path).add(run.decodeMsPerImage());
                                stats.get(at).putIfAbsent(path, run.stats());
                                if (repeat == 0 && (path.equals(WHOLE) || path.equals("none"))) {
                                    first.get(at).put(path, run);
                                }
                            });
                }
            }
        }
        List<Timings> out = new ArrayList<>(n);
        for (int g = 0; g < n; g++) {
            double maxDiff = maxAbsDiff(first.get(g).get(WHOLE).images().values(), first.get(g).get("none").images().values());
            out.add(new Timings(msPerImage.get(g), stats.get(g), maxDiff, decodeMs.get(g)));
        }
        return out;
    }

    /** The table of one number format on stdout; returns its JSON objects (one per policy). */
    private List<Map<String, Object>> report(Generator generator, String dtype, java.util.Set<String> policies,
            Timings timings) {
        PrintWriter stdout = spec.commandLine().getOut();
        SamplerKind kind = sampler.samplerKind();
        int steps = sampler.steps;
        double cfg = sampler.cfg;
        Map<String, Summary> summaries = new LinkedHashMap<>();
        timings.msPerImage().forEach((k, v) -> summaries.put(k, Summary.of(v)));
        double whole = summaries.get(WHOLE).median();
        double none = summaries.get("none").median();
        double overhead = none / whole;
        double baseline = Math.min(whole, none); // the fastest uncached path

        String threads = System.getProperty("ai.djl.pytorch.num_threads", "default");
        Map<String, Object> host = Host.describe();
        stdout.printf(Locale.ROOT, "model %s (%s), dtype %s; batch %d, %s %d steps, cfg %s; %d warm-up + %d timed rounds; "
                + "%d cores, libtorch threads %s%nhost %s%n", generator.manifest().name(), generator.directory(),
                dtype, batch, kind, steps, GenerateCommand.fmt(cfg), warmup, repeats,
                Runtime.getRuntime().availableProcessors(), threads, host);
        Table t = new Table("path / policy", "median ms/img", "q1", "q3", "min", "max", "speedup", "vs fastest",
                "FLOP bound", "of bound", "compute", "cached step", "cache peak");
        for (String k : summaries.keySet()) {
            Summary s = summaries.get(k);
            RunStats st = timings.stats().get(k);
            t.row(k, f("%.2f", s.median()), f("%.2f", s.q1()), f("%.2f", s.q3()), f("%.2f", s.min()),
                    f("%.2f", s.max()), k.equals(WHOLE) ? "-" : f("%.2fx", none / s.median()),
                    f("%.2fx", baseline / s.median()), f("%.2fx", st.flopSpeedup()),
                    f("%.2f", baseline / s.median() / st.flopSpeedup()), f("%.3f", st.computeFraction()),
                    Double.isNaN(st.cachedStepCost()) ? "-" : f("%.3f", st.cachedStepCost()),
                    k.equals(WHOLE) ? "-" : GenerateCommand.bytes(st.peakCacheBytes()));
        }
        stdout.print(t.render());
        stdout.printf(Locale.ROOT, "component overhead (none / whole-model forward, medians): %.3f%n", overhead);
        stdout.printf(Locale.ROOT, "component path vs whole-model forward, uncached, same inputs: max |diff| = %.3g%n",
                timings.maxDiff());
        Map<String, Double> decode = new LinkedHashMap<>();
        timings.decodeMsPerImage().forEach((k, v) -> decode.put(k, Summary.of(v).median()));
        if (decode.get("none") > 0) {
            StringBuilder shares = new StringBuilder();
            for (String k : summaries.keySet()) {
                shares.append(shares.length() == 0 ? "" : ", ").append(k).append(' ')
                        .append(f("%.1f%%", 100 * decode.get(k) / summaries.get(k).median()));
            }
            stdout.printf(Locale.ROOT, "latent decoder: median %.1f ms/img (included above); share of each path's time: %s%n",
                    decode.get("none"), shares);
        }

        List<Map<String, Object>> array = new ArrayList<>();
        for (String k : policies) {
            Summary s = summaries.get(k);
            RunStats st = timings.stats().get(k);
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("model", generator.manifest().name());
            o.put("model_dir", generator.directory().toString());
            o.put("policy", k);
            o.put("dtype", dtype);
            o.put("host", host);
            o.put("sampler", kind.id());
            o.put("steps", steps);
            o.put("batch", batch);
            o.put("cfg", cfg);
            o.put("repeats", repeats);
            o.put("warmup", warmup);
            o.put("threads", threads);
            o.put("cores", Runtime.getRuntime().availableProcessors());
            o.put("ms_per_image_uncached", none);
            o.put("ms_per_image_cached", s.median());
            o.put("ms_per_image_whole_model", whole);
            o.put("measured_speedup", none / s.median());
            o.put("measured_speedup_vs_whole_model", whole / s.median());
            o.put("speedup_vs_whole_model", baseline / s.median());
            o.put("cached_step_cost", Outputs.finite(st.cachedStepCost()));
            o.put("full_step_ms", Outputs.finite(st.fullStepMs()));
            o.put("cached_step_ms", Outputs.finite(st.cachedStepMs()));
            o.put("flop_speedup", st.flopSpeedup());
            o.put("compute_fraction", st.computeFraction());
            o.put("component_overhead", overhead);
            o.put("cache_bytes_peak", st.peakCacheBytes());
            o.put("ms_per_image_cached_stats", summaryJson(s));
            o.put("ms_per_image_uncached_stats", summaryJson(summaries.get("none")));
            o.put("ms_per_image_whole_model_stats", summaryJson(summaries.get(WHOLE)));
            // per timed round, in round order: rounds of one path pair with the same rounds of another
            o.put("ms_per_image_cached_rounds", timings.msPerImage().get(k));
            o.put("ms_per_image_uncached_rounds", timings.msPerImage().get("none"));
            o.put("ms_per_image_whole_model_rounds", timings.msPerImage().get(WHOLE));
            o.put("max_abs_diff_components_vs_whole_model", Outputs.finite(timings.maxDiff()));
            o.put("decode_ms_per_image", decode.get(k));
            o.put("decode_share", decode.get(k) / s.median());
            array.add(o);
        }
        stdout.flush();
        return array;
    }

    private static Map<String, Object> summaryJson(Summary s) {
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("median", s.median());
        o.put("q1", s.q1());
        o.put("q3", s.q3());
        o.put("min", s.min());
        o.put("max", s.max());
        o.put("n", s.count());
        return o;
    }

    private static double maxAbsDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }
}
