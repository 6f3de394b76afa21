package dev.fora.examples.cli;

import dev.fora.core.cache.CachePolicy;
import dev.fora.core.sampling.NoiseSource;
import dev.fora.core.sampling.PerImageNoise;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.djl.DiTPipeline;
import dev.fora.djl.GeneratedImages;
import dev.fora.djl.GenerationRequest;
import dev.fora.djl.GenerationService;
import dev.fora.djl.Images;
import dev.fora.core.sampling.SamplerKind;
import dev.fora.djl.ServiceStats;
import dev.fora.examples.metrics.Summary;
import dev.fora.examples.progress.Progress;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.ToDoubleFunction;

/**
 * {@code fora bench --clients N}: {@code N} closed-loop clients in this JVM, each sending its
 * single-image requests one after the other, served three ways side by side in every round: by a
 * {@link GenerationService} (continuous batching), one request at a time
 * ({@link DiTPipeline#generate} per image), and as static batches of {@code N} images of one
 * policy and step count. Image {@code k} is the same image on every path (its label, seed, policy
 * and steps), so the paths are compared on the same work.
 */
final class ClientsBench {

    /** One client request. */
    record Image(int label, long seed, String spec, CachePolicy policy, int steps) {
    }

    /**
     * The medians over the timed rounds, and what the service measured. The CPU milliseconds per
     * image are those of the thread that ran the model (the service's, or the bench's own for the
     * other two paths): with one libtorch thread they compare the paths' work, whatever else loads
     * the host.
     */
    record Result(double continuousImagesPerS, double oneAtATimeImagesPerS, double staticBatchImagesPerS,
            double latencyP50Ms, double latencyP95Ms, double staticBatchWallMs, int maxPixelDiff, double rowsPerPass,
            double continuousCpuMs, double oneAtATimeCpuMs, double staticBatchCpuMs, List<Round> rounds) {

        /** The median over rounds of the uniform run's continuous images/s; NaN for a uniform bench. */
        double uniformImagesPerS() {
            return median(rounds, Round::uniformImagesPerS);
        }

        /** The median over rounds of continuous images/s over the uniform run's in the same round; NaN for a uniform bench. */
        double continuousVsUniform() {
            return median(rounds, Round::continuousVsUniform);
        }

        /** The median over rounds of continuous images/s over one-at-a-time images/s in the same round. */
        double continuousVsOneAtATime() {
            return median(rounds, Round::continuousVsOneAtATime);
        }

        /** The median over rounds of static batches' images/s over one-at-a-time images/s in the same round. */
        double staticBatchVsOneAtATime() {
            return median(rounds, Round::staticBatchVsOneAtATime);
        }

        /** The median over rounds of continuous images/s over static batches' images/s in the same round. */
        double continuousVsStaticBatch() {
            return median(rounds, Round::continuousVsStaticBatch);
        }

        /** The median over rounds of the round's p95 latency over its static batch's wall time; NaN without full batches. */
        double latencyP95VsStaticBatchWall() {
            return Double.isNaN(staticBatchWallMs) ? Double.NaN : median(rounds, Round::latencyP95VsStaticBatchWall);
        }
    }

    /** The median over the rounds of a per-round value. */
    private static double median(List<Round> rounds, ToDoubleFunction<Round> value) {
        return Summary.of(rounds.stream().mapToDouble(value).toArray()).median();
    }

    /**
     * One timed round: the paths ran one after the other on the same images, so their ratios
     * compare them under the same host speed, which drifts between rounds on a shared VM.
     *
     * @param staticBatchWallMs the median wall time of the round's full static batches (NaN when none is full)
     * @param uniformImagesPerS the uniform run's continuous images/s in the round (NaN for a uniform bench)
     */
    record Round(double continuousImagesPerS, double oneAtATimeImagesPerS, double staticBatchImagesPerS,
            double latencyP95Ms, double staticBatchWallMs, double uniformImagesPerS) {

        double continuousVsUniform() {
            return continuousImagesPerS / uniformImagesPerS;
        }

        double continuousVsOneAtATime() {
            return continuousImagesPerS / oneAtATimeImagesPerS;
        }

        double staticBatchVsOneAtATime() {
            return staticBatchImagesPerS / oneAtATimeImagesPerS;
        }

        double continuousVsStaticBatch() {
            return continuousImagesPerS / staticBatchImagesPerS;
        }

        /** NaN when the round had no full static batch. */
        double latencyP95VsStaticBatchWall() {
            return latencyP95Ms / staticBatchWallMs;
        }
    }

    private static final ThreadMXBean CPU = ManagementFactory.getThreadMXBean();

    private final DiTPipeline pipeline;
    private final SamplerKind sampler;
    private final double cfg;
    private final int clients;
    private final List<Image> images;
    /** The uniform run served beside a mix in every round, or null: its images, as many. */
    private final List<Image> uniform;

    /** @param uniform for a mix, the uniform run to serve beside it in every round (as many images); else null */
    ClientsBench(DiTPipeline pipeline, SamplerKind sampler, double cfg, int clients, List<Image> images, List<Image> uniform) {
        this.pipeline = pipeline;
        this.sampler = sampler;
        this.cfg = cfg;
        this.clients = clients;
        this.images = images;
        this.uniform = uniform;
    }

    /**
     * Image {@code k} of the run, request {@code k / clients} of client {@code k % clients}: labels
     * cycle through the classes. Each client cycles through every (policy, step count) pair, from
     * its own starting pair: so clients share the mix at any moment and do the same work, and no
     * client sending only short requests leaves the others to finish alone.
     */
    static List<Image> images(int clients, int perClient, int classes, long seed, Map<String, CachePolicy> policies,
            int[] steps) {
        List<String> specs = new ArrayList<>(policies.keySet());
        int pairs = specs.size() * steps.length;
        List<Image> out = new ArrayList<>();
        for (int k = 0; k < clients * perClient; k++) {
            int pair = (k / clients + k % clients) % pairs;
            String spec = specs.get(pair % specs.size());
            out.add(new Image(k % classes, seed + k, spec, policies.get(spec), steps[pair / specs.size()]));
        }
        return out;
    }

    private GenerationRequest request(Image i) {
        return GenerationRequest.builder(i.label()).sampler(sampler).steps(i.steps()).cfgScale(cfg).policy(i.policy())
                .seed(i.seed()).build();
    }

    Result run(int warmup, int repeats, Progress progress) throws Exception {
        List<Double> latencies = new ArrayList<>();
        List<Double> continuousCpu = new ArrayList<>();
        List<Double> oneAtATimeCpu = new ArrayList<>();
        List<Double> staticBatchCpu = new ArrayList<>();
        List<Round> rounds = new ArrayList<>();
        int maxPixelDiff = 0;
        double rowsPerPass = 0;
        for (int round = 0; round < warmup + repeats; round++) {
            boolean timed = round >= warmup;
            String name = timed ? "repeat " + (round - warmup + 1) : "warm-up " + (round + 1);
            // the uniform run goes before the mix in every other round, so neither always runs on a warmer process
            boolean uniformFirst = uniform != null && round % 2 == 1;
            double uniformS = uniformFirst ? serveUniform(name, progress) : Double.NaN;
            progress.phase(name + ", continuous");
            List<Double> roundLatencies = new ArrayList<>();
            long t0 = System.nanoTime();
            float[][] served;
            ServiceStats stats;
            try (GenerationService service = newService()) {
                served = serve(service, images, roundLatencies);
                stats = service.stats();
            }
            double continuousS = (System.nanoTime() - t0) / 1e9;
            progress.imagesDone(images.size());
            if (uniform != null && !uniformFirst) {
                uniformS = serveUniform(name, progress);
            }
            progress.phase(name + ", one at a time");
            float[][] alone = new float[images.size()][];
            t0 = System.nanoTime();
            long cpu0 = CPU.getCurrentThreadCpuTime();
            for (int k = 0; k < images.size(); k++) {
                alone[k] = pipeline.generate(request(images.get(k))).data();
            }
            double aloneS = (System.nanoTime() - t0) / 1e9;
            double aloneCpuMs = (CPU.getCurrentThreadCpuTime() - cpu0) / 1e6;
            progress.imagesDone(images.size());
            progress.phase(name + ", static batches of " + clients);
            cpu0 = CPU.getCurrentThreadCpuTime();
            double[] batch = staticBatches();
            double batchCpuMs = (CPU.getCurrentThreadCpuTime() - cpu0) / 1e6;
            progress.imagesDone(images.size());
            if (timed) {
                continuousCpu.add(stats.cpuSeconds() * 1e3 / images.size());
                oneAtATimeCpu.add(aloneCpuMs / images.size());
                staticBatchCpu.add(batchCpuMs / images.size());
                latencies.addAll(roundLatencies);
                rounds.add(new Round(images.size() / continuousS, images.size() / aloneS, images.size() / batch[0],
                        percentile(roundLatencies.stream().mapToDouble(Double::doubleValue).sorted().toArray(), 0.95),
                        batch[1] * 1e3, uniform == null ? Double.NaN : uniform.size() / uniformS));
                rowsPerPass += stats.meanRowsPerPass() / repeats;
                for (int k = 0; k < images.size(); k++) {
                    maxPixelDiff = Math.max(maxPixelDiff, pixelDiff(served[k], alone[k]));
                }
            }
        }
        double[] sorted = latencies.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return new Result(median(rounds, Round::continuousImagesPerS), median(rounds, Round::oneAtATimeImagesPerS),
                median(rounds, Round::staticBatchImagesPerS), percentile(sorted, 0.50), percentile(sorted, 0.95),
                median(rounds, Round::staticBatchWallMs), maxPixelDiff, rowsPerPass,
                Summary.of(continuousCpu).median(), Summary.of(oneAtATimeCpu).median(), Summary.of(staticBatchCpu).median(),
                List.copyOf(rounds));
    }

    /** Serves the uniform run through a service of its own: seconds. */
    private double serveUniform(String round, Progress progress) throws Exception {
        progress.phase(round + ", continuous, the uniform run");
        long t0 = System.nanoTime();
        try (GenerationService service = newService()) {
            serve(service, uniform, new ArrayList<>());
        }
        progress.imagesDone(uniform.size());
        return (System.nanoTime() - t0) / 1e9;
    }

    private GenerationService newService() {
        return GenerationService.builder(pipeline).maxRows(2 * clients).queueCapacity(clients).build();
    }

    /** The clients: each sends its requests of {@code images} in turn, the next when the last is answered. */
    private float[][] serve(GenerationService service, List<Image> images, List<Double> latencies) throws Exception {
        float[][] out = new float[images.size()][];
        int perClient = images.size() / clients;
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        // the clients start together, as N users already waiting, not as their threads happen to start
        CountDownLatch ready = new CountDownLatch(clients);
        try {
            List<Future<double[]>> done = new ArrayList<>();
            for (int c = 0; c < clients; c++) {
                int client = c;
                done.add(pool.submit(() -> {
                    ready.countDown();
                    ready.await();
                    double[] ms = new double[perClient];
                    for (int i = 0; i < perClient; i++) {
                        int k = i * clients + client;
                        long t = System.nanoTime();
                        CompletableFuture<GeneratedImages> f = service.submit(request(images.get(k)));
                        out[k] = f.get().data();
                        ms[i] = (System.nanoTime() - t) / 1e6;
                    }
                    return ms;
                }));
            }
            for (Future<double[]> f : done) {
                for (double ms : f.get()) {
                    latencies.add(ms);
                }
            }
        } finally {
            pool.shutdownNow();
        }
        return out;
    }

    /**
     * The images as static batches: consecutive images of one policy and step count, {@code clients}
     * at a time, each image with its own seed.
     *
     * @return seconds for all images, and the median seconds of one full batch
     */
    private double[] staticBatches() {
        Map<String, List<Image>> groups = new LinkedHashMap<>();
        for (Image i : images) {
            groups.computeIfAbsent(i.spec() + "@" + i.steps(), g -> new ArrayList<>()).add(i);
        }
        List<Double> full = new ArrayList<>();
        long t0 = System.nanoTime();
        for (List<Image> group : groups.values()) {
            for (int from = 0; from < group.size(); from += clients) {
                List<Image> b = group.subList(from, Math.min(group.size(), from + clients));
                int[] labels = b.stream().mapToInt(Image::label).toArray();
                List<NoiseSource> noise = new ArrayList<>();
                for (Image i : b) {
                    noise.add(new SeededGaussianNoise(i.seed()));
                }
                Image first = b.get(0);
                long t = System.nanoTime();
                pipeline.generate(GenerationRequest.builder(labels).sampler(sampler).steps(first.steps()).cfgScale(cfg)
                        .policy(first.policy()).noise(new PerImageNoise(noise)).build());
                if (b.size() == clients) {
                    full.add((System.nanoTime() - t) / 1e9);
                }
            }
        }
        double all = (System.nanoTime() - t0) / 1e9;
        return new double[] {all, full.isEmpty() ? Double.NaN : Summary.of(full).median()};
    }

    /** The largest difference of two images in 8-bit steps. */
    private static int pixelDiff(float[] a, float[] b) {
        int max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs(Images.toByte(a[i]) - Images.toByte(b[i])));
        }
        return max;
    }

    private static double percentile(double[] sorted, double q) {
        return sorted.length == 0 ? Double.NaN : sorted[Math.min(sorted.length - 1, (int) Math.ceil(q * sorted.length) - 1)];
    }

    static int[] parseSteps(String list) {
        try {
            int[] steps = Arrays.stream(list.split(",")).map(String::strip).mapToInt(Integer::parseInt).toArray();
            for (int s : steps) {
                Checks.atLeast("--mix-steps", s, 1);
            }
            return steps;
        } catch (NumberFormatException e) {
            throw new CliException(ExitCodes.USAGE, "--mix-steps must be step counts separated by commas, got " + list);
        }
    }
}
