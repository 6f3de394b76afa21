package dev.fora.examples.cli;

import static dev.fora.examples.cli.Table.f;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.djl.GenerationRequest.Forward;
import dev.fora.examples.engine.Generator;
import dev.fora.examples.engine.Generator.Job;
import dev.fora.examples.progress.Progress;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
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

/** {@code fora soak}: many generations in one process, watching its memory for leaks. */
@Command(name = "soak", sortOptions = false, mixinStandardHelpOptions = true,
        description = {"Run many generations in one process and watch its memory, to show that nothing leaks.",
                "Runs --count generations of --batch images (labels cycling through the classes, seed + i for "
                + "generation i) and every --every generations samples the process's resident set size (VmRSS in "
                + "/proc/self/status, Linux), the native arrays alive under the model and the Java heap (in use and "
                + "committed: the JVM grows its heap in the first generations, which shows in the RSS). "
                + "Prints a table and the first, last and largest RSS."},
        footer = {"", "Example: fora soak --count 1000 --every 100 --steps 10 --json soak.json"})
public final class SoakCommand implements Callable<Integer> {

    private static final Path STATUS = Path.of("/proc/self/status");

    @Spec
    CommandSpec spec;

    @Option(names = "--count", paramLabel = "N", defaultValue = "1000",
            description = "Generations to run (default: ${DEFAULT-VALUE}).")
    int count;

    @Option(names = "--every", paramLabel = "M", defaultValue = "100",
            description = "Sample the memory every M generations, and before the first (default: ${DEFAULT-VALUE}).")
    int every;

    @Option(names = "--policy", paramLabel = "SPEC", defaultValue = "fora:3",
            description = "Cache policy spec (default: ${DEFAULT-VALUE}).")
    String policy;

    @Mixin
    SamplerOptions sampler;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "1",
            description = "Images per generation (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Noise seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the samples as JSON.")
    Path json;

    @Mixin
    CommonOptions common;

    /**
     * One memory sample.
     *
     * @param generations generations finished when it was taken
     * @param rssBytes resident set size, or null where /proc/self/status is not readable
     * @param nativeArrays NDArrays alive under the model's manager
     * @param heapBytes Java heap in use
     * @param heapCommittedBytes Java heap committed (part of the RSS)
     * @param seconds since the first sample
     */
    record Sample(int generations, Long rssBytes, int nativeArrays, long heapBytes, long heapCommittedBytes,
            double seconds) {
    }

    @Override
    public Integer call() {
        Checks.atLeast("--count", count, 1);
        Checks.atLeast("--every", every, 1);
        Checks.atLeast("--batch", batch, 1);
        sampler.check();
        CachePolicy cachePolicy = Policies.parse(policy);
        Outputs.checkWritable(json, "--json", spec);
        try (Generator generator = common.load()) {
            report(generator, CachePolicies.toSpec(cachePolicy), run(generator, cachePolicy));
        }
        return ExitCodes.OK;
    }

    private List<Sample> run(Generator generator, CachePolicy cachePolicy) {
        int classes = generator.config().numClasses();
        Job base = new Job(new int[batch], sampler.samplerKind(), sampler.steps, sampler.cfg, cachePolicy, seed, batch,
                Forward.CACHED, !sampler.noFiniteCheck);
        List<Sample> samples = new ArrayList<>();
        long t0 = System.nanoTime();
        samples.add(sample(generator, 0, t0));
        try (Progress progress = Progress.create(common.quiet, "soak", (long) count * sampler.steps, count * batch)) {
            for (int i = 0; i < count; i++) {
                int[] labels = new int[batch];
                for (int k = 0; k < batch; k++) {
                    labels[k] = (i * batch + k) % classes;
                }
                generator.run(base.withLabels(labels).withSeed(seed + (long) i * batch), progress);
                if ((i + 1) % every == 0 || i + 1 == count) {
                    samples.add(sample(generator, i + 1, t0));
                }
            }
        }
        return samples;
    }

    private static Sample sample(Generator generator, int generations, long t0) {
        Runtime rt = Runtime.getRuntime();
        return new Sample(generations, residentSetBytes(), generator.nativeArrays(), rt.totalMemory() - rt.freeMemory(),
                rt.totalMemory(), (System.nanoTime() - t0) / 1e9);
    }

    /** VmRSS of this process, or null where /proc/self/status is not there (not Linux). */
    static Long residentSetBytes() {
        try {
            for (String line : Files.readAllLines(STATUS)) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.substring(6).replace("kB", "").strip()) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // not Linux, or a format we do not know: no figure
        }
        return null;
    }

    private void report(Generator generator, String policySpec, List<Sample> samples) {
        PrintWriter stdout = spec.commandLine().getOut();
        stdout.printf(Locale.ROOT, "model %s (%s); %d generations of %d image(s), %s %d steps, cfg %s, policy %s%n",
                generator.manifest().name(), generator.directory(), count, batch, sampler.samplerKind(), sampler.steps,
                GenerateCommand.fmt(sampler.cfg), policySpec);
        Table t = new Table("generations", "RSS MiB", "native arrays", "heap used MiB", "heap committed MiB", "elapsed s");
        for (Sample s : samples) {
            t.row(Integer.toString(s.generations()), s.rssBytes() == null ? "-" : f("%.1f", mib(s.rssBytes())),
                    Integer.toString(s.nativeArrays()), f("%.1f", mib(s.heapBytes())), f("%.1f", mib(s.heapCommittedBytes())),
                    f("%.1f", s.seconds()));
        }
        stdout.print(t.render());
        Long first = samples.get(0).rssBytes();
        Long last = samples.get(samples.size() - 1).rssBytes();
        Long max = samples.stream().map(Sample::rssBytes).filter(java.util.Objects::nonNull).max(Long::compare).orElse(null);
        if (first == null) {
            stdout.println("RSS not available (no /proc/self/status)");
        } else {
            stdout.printf(Locale.ROOT, "RSS first %.1f MiB, last %.1f MiB, max %.1f MiB%n", mib(first), mib(last), mib(max));
        }
        if (json != null) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("model", generator.manifest().name());
            o.put("policy", policySpec);
            o.put("sampler", sampler.samplerKind().id());
            o.put("steps", sampler.steps);
            o.put("cfg", sampler.cfg);
            o.put("batch", batch);
            o.put("count", count);
            o.put("every", every);
            o.put("threads", System.getProperty("ai.djl.pytorch.num_threads", "default"));
            o.put("rss_first_bytes", first);
            o.put("rss_last_bytes", last);
            o.put("rss_max_bytes", max);
            List<Map<String, Object>> rows = new ArrayList<>();
            for (Sample s : samples) {
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("generations", s.generations());
                r.put("rss_bytes", s.rssBytes());
                r.put("native_arrays", s.nativeArrays());
                r.put("heap_bytes", s.heapBytes());
                r.put("heap_committed_bytes", s.heapCommittedBytes());
                r.put("elapsed_s", s.seconds());
                rows.add(r);
            }
            o.put("samples", rows);
            Outputs.writeJson(o, json, "--json");
            stdout.printf(Locale.ROOT, "wrote %s%n", json);
        }
        stdout.flush();
    }

    private static double mib(long bytes) {
        return bytes / (1024.0 * 1024.0);
    }
}
