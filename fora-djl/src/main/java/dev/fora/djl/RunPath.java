package dev.fora.djl;

import ai.djl.ndarray.NDManager;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.engine.Generation;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.engine.GenerationStats;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.DiTModel;
import dev.fora.core.sampling.CancelToken;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.DenoisingModel;
import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.LoopControl;
import dev.fora.core.sampling.NoiseSource;
import dev.fora.core.sampling.SamplerKind;
import java.util.Arrays;
import java.util.function.UnaryOperator;

/**
 * The one place a run is put together: the sampler (its kind and steps, clipped only where the
 * manifest allows), the cached model (or the exported whole-model forward), classifier-free
 * guidance with the model family's unconditional rows and the guided channels, and the model
 * view it all runs on. {@link DiTPipeline#generate}, {@link DiTPipeline#record} and
 * {@link DiTPipeline#openGeneration} run here, and through {@code generate} the CLI and the
 * Spark job; so a recording is of the trajectory {@code generate} runs. {@link GenerationService}
 * takes its samplers and guided channels from here and runs each image as a core
 * {@link dev.fora.core.engine.Run}.
 *
 * <p>This is the only class of the module that uses the core's {@link Generation}: the engine
 * behind {@link Cached} can change without touching the callers.
 */
final class RunPath {

    private RunPath() {
    }

    /**
     * The sampler of {@code steps} steps of a model trained on {@code trainingSchedule}: predicted x0
     * is clipped only if the caller asks and the manifest allows it ({@code diffusion.clip_denoised}:
     * latent models are never clipped).
     */
    static DiffusionSampler sampler(ModelManifest manifest, DiffusionSchedule trainingSchedule, SamplerKind kind, int steps,
            boolean clipDenoised) {
        return kind.create(trainingSchedule, steps, clipDenoised && manifest.clipDenoised());
    }

    /**
     * The leading latent channels guidance mixes: {@code requested}, or for 0 the manifest's count
     * for the sampler ({@link ModelManifest.Guidance}).
     *
     * @throws IllegalArgumentException unless the count is from 1 to the latent channels
     */
    static int guidedChannels(ModelManifest manifest, SamplerKind kind, int requested) {
        int channels = manifest.config().inChannels();
        int guided = requested != 0 ? requested : manifest.guidance().channelsFor(kind);
        if (guided < 1 || guided > channels) {
            throw new IllegalArgumentException("cannot guide " + guided + " channels of a " + channels + "-channel latent "
                    + "(guided channels go from 1 to " + channels + ")");
        }
        return guided;
    }

    /**
     * Classifier-free guidance of {@code inner} at {@code scale}: the unconditional half is the
     * model family's ({@link TorchScriptModel#unconditionalFor}), the leading {@code guidedChannels}
     * eps channels are mixed.
     */
    static DenoisingModel<NDTensor> guided(TorchScriptModel model, DenoisingModel<NDTensor> inner, double scale,
            int guidedChannels) {
        return new ClassifierFreeGuidance<>(model.ops(), inner, scale, model::unconditionalFor,
                guidedChannels == model.config().inChannels() ? 0 : guidedChannels);
    }

    /**
     * The cached model of one run: the feature cache and the deciders of its images, released by
     * {@link #close()}.
     */
    static final class Cached implements AutoCloseable {
        private final Generation<NDTensor> generation;

        private Cached(Generation<NDTensor> generation) {
            this.generation = generation;
        }

        /** The model the sampler (or guidance) calls once per step. */
        DenoisingModel<NDTensor> model() {
            return generation;
        }

        GenerationInfo info() {
            return generation.info();
        }

        GenerationStats stats() {
            return generation.stats();
        }

        int nextStep() {
            return generation.nextStep();
        }

        long cacheBytes() {
            return generation.cacheBytes();
        }

        /** The policy's spec, for messages. */
        String policy() {
            return generation.policy().spec().orElse(String.valueOf(generation.policy()));
        }

        @Override
        public void close() {
            generation.close();
        }
    }

    /**
     * Opens the cached model of {@code model} under {@code policy}.
     *
     * @param guided whether every image runs a conditional and an unconditional row
     * @param checkFinite whether the cached model checks each step's output itself (a sampler loop
     *     that checks needs no second check)
     */
    static Cached cached(DiTModel<NDTensor> model, CachePolicy policy, int steps, int images, boolean guided,
            long cacheBudget, boolean fusedSteps, boolean checkFinite) {
        return new Cached(Generation.builder(model, policy).steps(steps).images(images).guided(guided)
                .cacheBudget(cacheBudget).fusedSteps(fusedSteps).checkFinite(checkFinite).open());
    }

    /**
     * Runs a request on a new view of the pipeline's model: the whole sampler loop, then the
     * decoder if the directory has one and the request wants it.
     *
     * @param observe wraps the model the cache runs (identity for {@code generate}; the recorder
     *     for {@code record}); it must forward every call
     */
    static GeneratedImages sample(DiTPipeline pipeline, GenerationRequest request, CancelToken cancel,
            UnaryOperator<DiTModel<NDTensor>> observe) {
        DiTConfig c = pipeline.config();
        Conditioning conditioning = request.conditioning();
        int n = request.images();
        c.conditioning().check(conditioning, n, false);
        long[] shape = {n, c.inChannels(), c.inputSize(), c.inputSize()};
        boolean guided = request.cfgScale() != 1.0;
        int guidedChannels = guidedChannels(pipeline.manifest(), request.sampler(), request.guidedChannels());
        DiffusionSampler sampler = sampler(pipeline.manifest(), pipeline.trainingSchedule(), request.sampler(),
                request.steps(), request.clipDenoised());
        long t0 = System.nanoTime();
        try (TorchScriptModel model = pipeline.newModel();
             Cached cached = request.forward() == GenerationRequest.Forward.CACHED
                     ? cached(observe.apply(model), request.policy(), request.steps(), n, guided, request.cacheBudget(),
                             request.fusedSteps(), false) // the loop checks
                     : null) {
            NDArrayOps ops = model.ops();
            DenoisingModel<NDTensor> denoiser = cached != null ? cached.model() : wholeModel(model);
            if (guided) {
                denoiser = guided(model, denoiser, request.cfgScale(), guidedChannels);
            }
            NDTensor x = sampler.sample(ops, denoiser, shape, conditioning, checked(request.noiseSource()),
                    LoopControl.DEFAULT.onStep(request.stepListener()).cancelledBy(cancel)
                            .checkFinite(request.checkFinite()));
            float[] latents = ops.toFloats(x);
            GenerationStats stats = cached != null ? cached.stats()
                    : GenerationStats.uncached(new GenerationInfo(request.steps(), c, n, guided, guided ? 2 : 1));
            TorchScriptDecoder decoder = pipeline.decoder().orElse(null);
            if (decoder == null || !request.decode()) {
                return new GeneratedImages(shape, latents, conditioning, stats, model.calls(), System.nanoTime() - t0);
            }
            long d0 = System.nanoTime();
            float[] images;
            try (NDManager m = ops.currentManager().newSubManager()) {
                images = decoder.decode(x.array(), m).toFloatArray();
            }
            long decodeNanos = System.nanoTime() - d0;
            return new GeneratedImages(decoder.imageShape(shape), images, shape, latents, decodeNanos, conditioning, stats,
                    model.calls(), System.nanoTime() - t0);
        }
    }

    /** The exported whole-model forward as the sampler's model: one TorchScript call per step. */
    private static DenoisingModel<NDTensor> wholeModel(TorchScriptModel model) {
        return (step, x, conditioning) -> {
            float[] t = new float[conditioning.size()];
            Arrays.fill(t, (float) step.timestep());
            return model.wholeModel(x, t, conditioning);
        };
    }

    /** Noise draws must have exactly the size the sampler asks for. */
    private static NoiseSource checked(NoiseSource source) {
        return drawShape -> {
            float[] draw = source.next(drawShape);
            int expected = NoiseSource.count(drawShape);
            if (draw == null || draw.length != expected) {
                throw new IllegalArgumentException("the noise source returned " + (draw == null ? "null" : draw.length
                        + " values") + " for a draw of shape " + Arrays.toString(drawShape) + " (" + expected + " values)");
            }
            return draw;
        };
    }
}
