package dev.fora.examples.engine;

import ai.djl.Device;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.NoCache;
import dev.fora.core.cache.SchedulePolicy;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.TextEmbeddings;
import dev.fora.core.recording.Recording;
import java.util.Map;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.sampling.CancelToken;
import dev.fora.core.sampling.StepListener;
import dev.fora.djl.DiTPipeline;
import dev.fora.djl.GeneratedImages;
import dev.fora.djl.GenerationRequest;
import dev.fora.djl.GenerationRequest.Forward;
import dev.fora.djl.ModelDirectory;
import dev.fora.djl.ModelLoadException;
import dev.fora.djl.ModelManifest;
import dev.fora.core.sampling.SamplerKind;
import dev.fora.djl.TorchScriptClassifier;
import dev.fora.examples.image.ImageBatch;
import dev.fora.examples.progress.Progress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The examples' view of a loaded model: runs a {@link Job} in batches of
 * {@link DiTPipeline#generate} calls with a progress bar, and scores images with the shipped
 * classifier. Image {@code i} of a job has the seed {@code seed + i} (the library's seed rule
 * per request), so a job's images are the same whatever its batch size.
 *
 * <p>{@link #cancelAll} stops the generations of every open generator before their next step
 * (the {@code fora} command's Ctrl-C); the interrupted job fails with a
 * {@link dev.fora.core.sampling.GenerationCancelledException} and the generator releases
 * everything when it is closed.
 */
public final class Generator implements AutoCloseable {

    /**
     * What to generate.
     *
     * @param labels one class label per image
     * @param sampler the sampler
     * @param steps sampler steps
     * @param cfgScale guidance scale (1 = none)
     * @param policy the cache policy ({@code none} on {@link Forward#WHOLE_MODEL})
     * @param seed noise seed of the first image; image {@code i} uses {@code seed + i}
     * @param batchSize images per generation call
     * @param path the forward path
     * @param checkFinite whether each step's model output is checked for NaN and infinity
     */
    public record Job(int[] labels, SamplerKind sampler, int steps, double cfgScale, CachePolicy policy, long seed,
            int batchSize, Forward path, boolean checkFinite) {

        /** The same job with another policy. */
        public Job withPolicy(CachePolicy p) {
            return new Job(labels, sampler, steps, cfgScale, p, seed, batchSize, path, checkFinite);
        }

        /** The same job with another seed. */
        public Job withSeed(long s) {
            return new Job(labels, sampler, steps, cfgScale, policy, s, batchSize, path, checkFinite);
        }

        /** The same job along another path. */
        public Job withPath(Forward p) {
            return new Job(labels, sampler, steps, cfgScale, policy, seed, batchSize, p, checkFinite);
        }

        /** The same job with other steps. */
        public Job withSteps(int k) {
            return new Job(labels, sampler, k, cfgScale, policy, seed, batchSize, path, checkFinite);
        }

        /** The same job with other labels. */
        public Job withLabels(int[] l) {
            return new Job(l, sampler, steps, cfgScale, policy, seed, batchSize, path, checkFinite);
        }

        /** Number of generation calls. */
        public int batches() {
            return (labels.length + batchSize - 1) / batchSize;
        }
    }

    /**
     * The outcome of a job.
     *
     * @param images all images, in label order (decoded, for a model directory with a latent decoder)
     * @param nanos wall time of the sampling loops and the decoding (excluding the classifier)
     * @param stats cache statistics over the batches
     * @param decodeNanos the part of {@code nanos} the latent decoder took (0 without one)
     */
    public record Run(ImageBatch images, long nanos, RunStats stats, long decodeNanos) {

        /** Milliseconds per image of the decoder. */
        public double decodeMsPerImage() {
            return decodeNanos / 1e6 / images.count();
        }


        /** Milliseconds per image. */
        public double msPerImage() {
            return nanos / 1e6 / images.count();
        }
    }

    /** The generators not yet closed, for {@link #cancelAll}. */
    private static final Set<Generator> OPEN = ConcurrentHashMap.newKeySet();

    private final DiTPipeline pipeline;
    /** The prompts of a text-conditioned model (a job's labels are their row indices), or null. */
    private TextEmbeddings prompts;
    private int guidedChannels;
    /** Every request of this generator carries it. */
    private final CancelToken cancel = new CancelToken();

    private Generator(DiTPipeline pipeline) {
        this.pipeline = pipeline;
        OPEN.add(this);
    }

    /**
     * Cancels the generations of every open generator: each stops before its next step.
     *
     * @return how many generators were open
     */
    public static int cancelAll(String reason) {
        int n = 0;
        for (Generator g : OPEN) {
            g.cancel.cancel(reason);
            n++;
        }
        return n;
    }

    /** Why {@link #cancelAll} stopped this generator's work, if it did: for work between generations. */
    public Optional<String> cancelled() {
        return cancel.isCancelled() ? cancel.reason().or(() -> Optional.of("cancelled")) : Optional.empty();
    }

    /**
     * Opens (manifest, sizes, SHA-256 digests) and loads a model directory onto a device.
     *
     * @throws ModelLoadException naming the file at fault
     */
    public static Generator open(java.nio.file.Path modelDir, DiTPipeline.Precision precision, Device device)
            throws ModelLoadException {
        return new Generator(DiTPipeline.load(modelDir, DiTPipeline.Options.defaults().withPrecision(precision)
                .withDevice(device)));
    }

    /** Reads and verifies a model directory without loading anything native (fast checks first). */
    public static ModelDirectory inspect(java.nio.file.Path modelDir) throws ModelLoadException {
        return ModelDirectory.open(modelDir);
    }

    /** The loaded pipeline (to serve it). */
    public DiTPipeline pipeline() {
        return pipeline;
    }

    /** The manifest. */
    public ModelManifest manifest() {
        return pipeline.manifest();
    }

    /** The model sizes. */
    public DiTConfig config() {
        return pipeline.config();
    }

    /** The model directory. */
    public java.nio.file.Path directory() {
        return pipeline.directory().root();
    }

    /**
     * Conditions every job on {@code prompts} (for a text-conditioned model: a job's labels are
     * then row indices into them) and guides {@code guidedChannels} latent channels (0: the
     * model's count).
     */
    public void condition(TextEmbeddings prompts, int guidedChannels) {
        this.prompts = prompts;
        this.guidedChannels = guidedChannels;
    }

    /** The prompts jobs are conditioned on, if the model is text-conditioned. */
    public Optional<TextEmbeddings> prompts() {
        return Optional.ofNullable(prompts);
    }

    /** How many distinct rows a job can use: the prompts, or the classes. */
    public int rows() {
        return prompts != null ? prompts.size() : config().numClasses();
    }

    /** A row's name: {@code "3 checker"} for a class with a name, {@code "prompt 2"} for a prompt. */
    public String rowName(int row) {
        if (prompts != null) {
            return "prompt " + row;
        }
        List<String> names = manifest().classes();
        return row < names.size() ? row + " " + names.get(row) : Integer.toString(row);
    }

    /** NDArrays alive under the model's manager (every generation's arrays live there): flat when nothing leaks. */
    public int nativeArrays() {
        return pipeline.manager().getManagedArrays().size();
    }

    /** The shipped classifier, if the model directory has one. */
    public Optional<TorchScriptClassifier> classifier() {
        return pipeline.classifier();
    }

    /** The SHA-256 of the model's DiT weights file (what a tuned schedule names), or the model's name if none is listed. */
    public String modelDigest() {
        return manifest().file(dev.fora.djl.ModelManifest.DIT).map(dev.fora.djl.ModelManifest.FileEntry::sha256)
                .orElse(manifest().name());
    }

    /** Runs a job; reports every sampler step and every finished batch to {@code progress}. */
    public Run run(Job job, Progress progress) {
        SchedulePolicy.in(job.policy()).ifPresent(s -> s.checkTarget(modelDigest(), job.sampler().id()));
        long[] stepEnds = new long[job.steps()];
        StepListener onStep = (step, totalSteps) -> {
            stepEnds[step] = System.nanoTime();
            progress.step();
        };
        List<ImageBatch> parts = new ArrayList<>();
        RunStats.Builder stats = new RunStats.Builder();
        long nanos = 0;
        long decodeNanos = 0;
        for (int b = 0; b < job.batches(); b++) {
            int from = b * job.batchSize();
            int to = Math.min(job.labels().length, from + job.batchSize());
            int[] labels = Arrays.copyOfRange(job.labels(), from, to);
            GenerationRequest request = request(job, labels, job.seed() + from, onStep).build();
            long t0 = System.nanoTime();
            GeneratedImages images = pipeline.generate(request);
            nanos += System.nanoTime() - t0;
            long[] stepNanos = new long[job.steps()];
            for (int k = 0; k < stepNanos.length; k++) {
                stepNanos[k] = stepEnds[k] - (k == 0 ? t0 : stepEnds[k - 1]);
            }
            stats.add(images.stats(), stepNanos);
            decodeNanos += images.decodeNanos();
            long[] shape = images.shape();
            parts.add(new ImageBatch(images.data(), labels.length, (int) shape[1], (int) shape[2], (int) shape[3]));
            progress.imagesDone(labels.length);
        }
        return new Run(ImageBatch.concat(parts), nanos, stats.build(), decodeNanos);
    }

    /** The request of a job's images {@code labels} (rows of the prompts, for a text-conditioned model). */
    private GenerationRequest.Builder request(Job job, int[] labels, long seed, StepListener onStep) {
        Conditioning conditioning = prompts != null ? prompts.rows(labels) : ClassLabels.of(labels);
        return GenerationRequest.builder(conditioning).sampler(job.sampler()).steps(job.steps()).cfgScale(job.cfgScale())
                .policy(job.policy()).seed(seed).clipDenoised(true).onStep(onStep).forward(job.path()).cancel(cancel)
                .checkFinite(job.checkFinite()).guidedChannels(guidedChannels);
    }

    /**
     * Records the uncached generation of a job's images in one batch ({@link DiTPipeline#record}):
     * the run {@link #run} makes of the job under {@code none} (same sampler, guidance, guided
     * channels and prompts), with every branch output, modulation and modulated input per step.
     * Stopped by {@link #cancelAll} like {@link #run}; nothing is returned then.
     */
    public Recording record(Job job, Progress progress, Map<String, String> metadata) {
        GenerationRequest request = request(job.withPolicy(NoCache.INSTANCE).withPath(Forward.CACHED), job.labels(),
                job.seed(), (step, total) -> progress.step()).decode(false).build();
        Recording recording = pipeline.record(request, metadata).recording();
        progress.imagesDone(job.labels().length);
        return recording;
    }

    /** Classifier features ({@code [N][F]}) of images. */
    public static float[][] features(TorchScriptClassifier classifier, ImageBatch images) {
        return classifier.features(images.values(), shape(images));
    }

    /** Fraction of images the classifier assigns to their intended label. */
    public static double accuracy(TorchScriptClassifier classifier, ImageBatch images, int[] labels) {
        int[] predicted = classifier.predict(images.values(), shape(images));
        int hits = 0;
        for (int i = 0; i < predicted.length; i++) {
            hits += predicted[i] == labels[i] ? 1 : 0;
        }
        return (double) hits / predicted.length;
    }

    private static long[] shape(ImageBatch images) {
        return new long[] {images.count(), images.channels(), images.height(), images.width()};
    }

    /** Frees the model. */
    @Override
    public void close() {
        OPEN.remove(this);
        pipeline.close();
    }
}
