package dev.fora.examples.engine;

import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.CachedDiT;
import dev.fora.core.cache.GenerationSession;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.DenoisingModel;
import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.NoiseSource;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.djl.DiTPipeline;
import dev.fora.djl.ModelDirectory;
import dev.fora.djl.ModelLoadException;
import dev.fora.djl.ModelManifest;
import dev.fora.djl.NDArrayOps;
import dev.fora.djl.NDTensor;
import dev.fora.djl.SamplerKind;
import dev.fora.djl.TorchScriptClassifier;
import dev.fora.djl.TorchScriptDiT;
import dev.fora.examples.image.ImageBatch;
import dev.fora.examples.progress.Progress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * The examples' view of a loaded model: runs a {@link Job} in batches with a progress bar,
 * along one of two paths, and scores images with the shipped classifier.
 *
 * <ul>
 * <li>{@link Path#COMPONENTS}: the sampler drives the core's {@link CachedDiT} session over the
 *     model's stages (embed, modulation, attention, MLP, final layer), so the cache policy
 *     applies. This is what {@link DiTPipeline#generate} does; it is spelled out here only to
 *     count sampler steps for the progress bar.</li>
 * <li>{@link Path#WHOLE_MODEL}: the sampler calls the exported whole-model TorchScript
 *     {@code forward} once per step: the uncached baseline without any component overhead.</li>
 * </ul>
 */
public final class Generator implements AutoCloseable {

    /** Which forward pass the sampler calls. */
    public enum Path {
        /** Stage by stage through the cache (any policy). */
        COMPONENTS,
        /** One call of the whole-model TorchScript forward per step (no cache). */
        WHOLE_MODEL
    }

    /**
     * What to generate.
     *
     * @param labels one class label per image
     * @param sampler the sampler
     * @param steps sampler steps
     * @param cfgScale guidance scale (1 = none)
     * @param policy the cache policy (ignored on {@link Path#WHOLE_MODEL})
     * @param seed noise seed of the first batch; batch {@code b} uses {@code seed + b}
     * @param batchSize images per generation call
     * @param path the forward path
     */
    public record Job(int[] labels, SamplerKind sampler, int steps, double cfgScale, CachePolicy policy, long seed,
            int batchSize, Path path) {

        /** The same job with another policy. */
        public Job withPolicy(CachePolicy p) {
            return new Job(labels, sampler, steps, cfgScale, p, seed, batchSize, path);
        }

        /** The same job with another seed. */
        public Job withSeed(long s) {
            return new Job(labels, sampler, steps, cfgScale, policy, s, batchSize, path);
        }

        /** The same job along another path. */
        public Job withPath(Path p) {
            return new Job(labels, sampler, steps, cfgScale, policy, seed, batchSize, p);
        }

        /** The same job with other steps. */
        public Job withSteps(int k) {
            return new Job(labels, sampler, k, cfgScale, policy, seed, batchSize, path);
        }

        /** The same job with other labels. */
        public Job withLabels(int[] l) {
            return new Job(l, sampler, steps, cfgScale, policy, seed, batchSize, path);
        }

        /** Number of generation calls. */
        public int batches() {
            return (labels.length + batchSize - 1) / batchSize;
        }
    }

    /**
     * The outcome of a job.
     *
     * @param images all images, in label order
     * @param nanos wall time of the sampling loops (excluding the classifier)
     * @param stats cache statistics over the batches
     */
    public record Run(ImageBatch images, long nanos, RunStats stats) {

        /** Milliseconds per image. */
        public double msPerImage() {
            return nanos / 1e6 / images.count();
        }
    }

    private final DiTPipeline pipeline;

    private Generator(DiTPipeline pipeline) {
        this.pipeline = pipeline;
    }

    /**
     * Opens (manifest, sizes, SHA-256 digests) and loads a model directory.
     *
     * @throws ModelLoadException naming the file at fault
     */
    public static Generator open(java.nio.file.Path modelDir) throws ModelLoadException {
        return new Generator(DiTPipeline.load(modelDir));
    }

    /** Reads and verifies a model directory without loading anything native (fast checks first). */
    public static ModelDirectory inspect(java.nio.file.Path modelDir) throws ModelLoadException {
        return ModelDirectory.open(modelDir);
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

    /** The shipped classifier, if the model directory has one. */
    public Optional<TorchScriptClassifier> classifier() {
        return pipeline.classifier();
    }

    /** Runs a job; reports every sampler step and every finished batch to {@code progress}. */
    public Run run(Job job, Progress progress) {
        DiTConfig c = config();
        int s = c.inputSize();
        List<ImageBatch> parts = new ArrayList<>();
        RunStats.Builder stats = new RunStats.Builder();
        long nanos = 0;
        for (int b = 0; b < job.batches(); b++) {
            int from = b * job.batchSize();
            int to = Math.min(job.labels().length, from + job.batchSize());
            int[] labels = Arrays.copyOfRange(job.labels(), from, to);
            long[] shape = {labels.length, c.inChannels(), s, s};
            DiffusionSampler sampler = job.sampler().create(pipeline.schedule(job.steps()), true);
            NoiseSource noise = new SeededGaussianNoise(job.seed() + b);
            long t0 = System.nanoTime();
            float[] data;
            try (TorchScriptDiT model = pipeline.newDiT()) {
                NDArrayOps ops = model.ops();
                if (job.path() == Path.WHOLE_MODEL) {
                    DenoisingModel<NDTensor> plain = ticking(wholeModel(model), progress);
                    data = ops.toFloats(sampler.sample(ops, guided(ops, plain, job, c), shape, labels, noise));
                    stats.addUncached();
                } else {
                    try (GenerationSession<NDTensor> session = new CachedDiT<>(model).newSession(job.policy(), job.steps())) {
                        DenoisingModel<NDTensor> denoiser = ticking(session, progress);
                        data = ops.toFloats(sampler.sample(ops, guided(ops, denoiser, job, c), shape, labels, noise));
                        stats.add(session.stats());
                    }
                }
            }
            nanos += System.nanoTime() - t0;
            parts.add(new ImageBatch(data, labels.length, c.inChannels(), s, s));
            progress.imagesDone(labels.length);
        }
        return new Run(ImageBatch.concat(parts), nanos, stats.build());
    }

    private static DenoisingModel<NDTensor> guided(NDArrayOps ops, DenoisingModel<NDTensor> inner, Job job, DiTConfig c) {
        return job.cfgScale() == 1.0 ? inner : new ClassifierFreeGuidance<>(ops, inner, job.cfgScale(), c.nullLabel());
    }

    /** The exported whole-model forward as the sampler's model: one TorchScript call per step. */
    private static DenoisingModel<NDTensor> wholeModel(TorchScriptDiT model) {
        return (step, x, labels) -> {
            float[] t = new float[labels.length];
            Arrays.fill(t, (float) step.timestep());
            return model.wholeModel(x, t, labels);
        };
    }

    private static DenoisingModel<NDTensor> ticking(DenoisingModel<NDTensor> inner, Progress progress) {
        return (step, x, labels) -> {
            NDTensor out = inner.predict(step, x, labels);
            progress.step();
            return out;
        };
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
        pipeline.close();
    }
}
