package com.example.consumer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.PerImageNoise;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.djl.DiTPipeline;
import dev.fora.djl.DjlGeneration;
import dev.fora.djl.GeneratedImages;
import dev.fora.djl.GenerationRequest;
import dev.fora.djl.Images;
import dev.fora.model.ShippedModel;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * A FORA4J application: generates images with FORA caching on the shipped model, once with the
 * one-call API and once with a sampler loop of its own, and writes them as PNGs.
 *
 * <p>Usage: {@code java -jar target/fora-consumer.jar [OUT_DIR [MODEL_DIR]]} (default {@code out}
 * and the shipped model). Exits with 1 if anything fails.
 */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        try {
            Path out = Path.of(args.length > 0 ? args[0] : "out");
            // The model inside the fora-model jar, extracted once to ~/.cache/fora4j (or $FORA_CACHE_DIR):
            // libtorch loads TorchScript from files, not from a jar.
            Path model = args.length > 1 ? Path.of(args[1]) : ShippedModel.extract();
            try (DiTPipeline pipeline = DiTPipeline.load(model)) {
                highLevel(pipeline, out);
                lowLevel(pipeline, out);
            }
        } catch (Exception e) {
            System.err.println("fora-consumer: " + e);
            e.printStackTrace();
            System.exit(1);
        }
    }

    /** One call: the pipeline runs the sampler, the cache policy and guidance. */
    static void highLevel(DiTPipeline pipeline, Path out) {
        GeneratedImages images = pipeline.generate(GenerationRequest.builder(0, 3, 5, 8) // class labels
                .sampler("ddim")          // ddim | ddpm | dpm-solver++ | dpms
                .steps(50)
                .cfgScale(1.5)            // classifier-free guidance; 1 = off
                .policy("fora:3")         // recompute the features every 3rd step, reuse them between
                .seed(42)                 // image k draws its noise from seed 42 + k
                .build());
        // sample_<index>_<label>.png: out/sample_0_0.png, sample_1_3.png, sample_2_5.png, sample_3_8.png (8x enlarged)
        List<Path> files = images.writePngs(out, "sample_", 8);
        System.out.println("wrote " + files);
        System.out.println(images.stats());  // full steps, compute fraction, speed-up, peak cache bytes
        System.out.println(images.calls());  // TorchScript calls; fused steps (the default) leave per-block counts at 0
        // The shipped model comes with a classifier; a model directory without classifier.pt has none.
        pipeline.classifier().ifPresent(c -> System.out.println("classifier sees " + Arrays.toString(c.predict(images))));
    }

    /** Your own sampler loop (DDIM, eta 0): the generation calls the cached model once per step. */
    static void lowLevel(DiTPipeline pipeline, Path out) {
        int steps = 50;
        ClassLabels labels = ClassLabels.of(1, 6);
        DiTConfig c = pipeline.config();
        long[] shape = {labels.size(), c.inChannels(), c.inputSize(), c.inputSize()};
        DiffusionSchedule s = pipeline.schedule(steps);   // the manifest's schedule respaced to 50 steps
        boolean clip = pipeline.decoder().isEmpty();      // pixels live in [-1, 1]; latents are not clipped
        float[] latent;
        try (NDManager manager = NDManager.newBaseManager();
             DjlGeneration generation = pipeline.openGeneration(CachePolicies.parse("fora:3"), steps, labels.size(), true)) {
            // the noise generate() draws for seed 7, so this loop gives generate()'s images for seed 7
            NDArray x = manager.create(PerImageNoise.seeded(7, labels.size()).next(shape), new Shape(shape));
            for (int k = 0; k < steps; k++) {
                SamplingStep step = SamplingStep.of(s, k);  // step k, its schedule row and original timestep
                int i = step.loopIndex();
                try (NDManager stepManager = manager.newSubManager()) {
                    // [x; x] with [labels; null class] in one batch, eps = eps_u + 1.5 (eps_c - eps_u)
                    NDArray modelOut = generation.predictGuided(step, x, labels, 1.5);
                    modelOut.attach(stepManager);
                    NDArray eps = modelOut.get(":, 0:" + c.inChannels()); // the rest: the learned variance
                    float a = (float) s.sqrtRecipAlphaCumprod(i);
                    float b = (float) s.sqrtRecipm1AlphaCumprod(i);
                    NDArray x0 = x.mul(a).sub(eps.mul(b));
                    x0 = clip ? x0.clip(-1f, 1f) : x0;
                    NDArray epsX0 = x.mul(a).sub(x0).div(b);
                    double prev = s.alphaCumprodPrev(i);
                    NDArray next = x0.mul((float) Math.sqrt(prev)).add(epsX0.mul((float) Math.sqrt(1 - prev)));
                    // DJL puts results in the manager of their first input: free this step's arrays with the step
                    for (NDArray t : new NDArray[] {eps, x0, epsX0, next}) {
                        t.attach(stepManager);
                    }
                    next.attach(manager);                   // the only array that outlives the step
                    x.close();
                    x = next;
                }
            }
            latent = x.toFloatArray();
            System.out.println("own loop: " + generation.stats());
        }
        // Latent to image: a pixel-space model's latent is the image; a latent model's decoder decodes it.
        long[] imageShape = pipeline.decoder().map(d -> d.imageShape(shape)).orElse(shape);
        float[] pixels = pipeline.decoder().map(d -> d.decode(latent, shape)).orElse(latent);
        int perImage = pixels.length / labels.size();
        for (int n = 0; n < labels.size(); n++) {
            Path file = out.resolve("loop_" + n + "_" + labels.label(n) + ".png");
            Images.writePng(Arrays.copyOfRange(pixels, n * perImage, (n + 1) * perImage),
                    (int) imageShape[1], (int) imageShape[2], (int) imageShape[3], 8, file);
            System.out.println("wrote " + file);
        }
    }
}
