package dev.fora.djl;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.Generation;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.cache.GenerationStats;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.sampling.CancelToken;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.DenoisingModel;
import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.GenerationCancelledException;
import dev.fora.core.sampling.LoopControl;
import dev.fora.core.sampling.NoiseSource;
import dev.fora.djl.ModelLoadException.Reason;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An exported diffusion transformer loaded into DJL, ready to generate: the high-level entry
 * point. The model is a DiT (class labels) or a PixArt-α (text embeddings,
 * {@link TorchScriptPixArt}); a model directory with a latent decoder ({@link TorchScriptDecoder})
 * has its samples decoded to images.
 *
 * <pre>{@code
 * try (DiTPipeline pipeline = DiTPipeline.load(Path.of("fora-examples/model/dit-patterns"))) {
 *     GeneratedImages images = pipeline.generate(GenerationRequest.builder(0, 3, 5)
 *             .sampler("ddim").steps(50).cfgScale(1.5).policy("fora:3").seed(42).build());
 *     images.writePngs(Path.of("out"), "sample", 8);
 *     System.out.println(images.stats());
 * }
 * }</pre>
 *
 * <p>One pipeline holds the weights once and serves any number of generations at the same
 * time from different threads: each generation gets its own {@link TorchScriptDiT} view,
 * native-memory scopes and feature cache.
 *
 * <p><b>Closing while generating.</b> {@link #close()} may be called while other threads are
 * generating; it never frees memory a running call uses (libtorch would crash the JVM). It
 * marks the pipeline closed, so new calls fail with an {@link IllegalStateException}; asks
 * running {@link #generate} calls to stop before their next step (they throw a
 * {@link GenerationCancelledException}, also an {@code IllegalStateException}); waits for
 * them, for running {@link DjlGeneration} steps and classifier calls to return; then frees the
 * model and every generation still open. So {@code close()} blocks for at most about one
 * sampler step. Views from {@link #newDiT()} are not tracked: stop using them before closing.
 */
public final class DiTPipeline implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(DiTPipeline.class);

    static {
        DjlRuntime.configure();
    }

    /**
     * Loading options.
     *
     * @param verifyDigests check the SHA-256 of every file against the manifest (default true)
     * @param graphOptimizer let TorchScript's profiling graph executor optimise the calls
     *     (default false: for small models its profiling runs cost more than they save, and
     *     results do not depend on warm-up)
     * @param loadClassifier load {@code classifier.pt} if the directory has one (default true)
     * @param precision the DiT's number format: {@link Precision#FLOAT32} (default), or the
     *     directory's bfloat16 or int8 variant; latents and the sampler stay float32
     */
    public record Options(boolean verifyDigests, boolean graphOptimizer, boolean loadClassifier, Precision precision) {

        /** The defaults. */
        public static Options defaults() {
            return new Options(true, false, true, Precision.FLOAT32);
        }

        /** With digest verification on or off. */
        public Options withVerifyDigests(boolean on) {
            return new Options(on, graphOptimizer, loadClassifier, precision);
        }

        /** With the TorchScript graph optimizer on or off. */
        public Options withGraphOptimizer(boolean on) {
            return new Options(verifyDigests, on, loadClassifier, precision);
        }

        /** With or without the classifier. */
        public Options withClassifier(boolean on) {
            return new Options(verifyDigests, graphOptimizer, on, precision);
        }

        /** With another precision. */
        public Options withPrecision(Precision p) {
            return new Options(verifyDigests, graphOptimizer, loadClassifier, Objects.requireNonNull(p, "precision"));
        }
    }

    /** The number format the DiT runs in, and the model directory's file for it. */
    public enum Precision {
        /** float32: the exported {@code dit.pt}. */
        FLOAT32(ModelManifest.DIT, null),
        /**
         * bfloat16 weights, arithmetic and cache: the directory's {@code dit_bf16} file (CPUs with
         * AVX512-BF16 or AMX run its matrix products several times faster; results differ from
         * float32 by bfloat16 rounding).
         */
        BFLOAT16(ModelManifest.DIT_BF16, "--bf16"),
        /**
         * int8 weights of the blocks' linear layers, quantized dynamically (activations per call),
         * the rest and the cache float32: the directory's {@code dit_int8} file (libtorch's fbgemm
         * kernels, faster on any AVX2 CPU and most with AVX-512 VNNI; results differ from float32
         * by the quantization).
         */
        INT8(ModelManifest.DIT_INT8, "--int8");

        private final String role;
        private final String exportFlag;

        Precision(String role, String exportFlag) {
            this.role = role;
            this.exportFlag = exportFlag;
        }

        /** The manifest role of this precision's DiT file. */
        public String role() {
            return role;
        }
    }

    /** The label embedding of a DiT: {@code num_classes + 1} rows, the last for the null class. */
    private static final String CLASS_TABLE = "y_embedder.embedding_table.weight";

    private final ModelDirectory directory;
    private final NDManager manager;
    private final TorchScriptModule dit;
    private final TorchScriptClassifier classifier;
    private final Precision precision;
    private final DiffusionSchedule trainingSchedule;
    /** The null caption of a PixArt-α ({@code [tokens * width]}), or null for a DiT. */
    private float[] nullCaption;
    private TorchScriptDecoder decoder;
    /** Calls in flight that use native memory; close waits for them. */
    private final CloseGuard uses;
    /** The cancel tokens of the running {@link #generate} calls, cancelled by {@link #close()}. */
    private final Set<CancelToken> running = ConcurrentHashMap.newKeySet();

    private DiTPipeline(ModelDirectory directory, NDManager manager, TorchScriptModule dit,
            TorchScriptClassifier classifier, DiffusionSchedule trainingSchedule, Precision precision, CloseGuard uses) {
        this.uses = uses;
        this.directory = directory;
        this.manager = manager;
        this.dit = dit;
        this.classifier = classifier;
        this.trainingSchedule = trainingSchedule;
        this.precision = precision;
    }

    /** Opens, verifies and loads a model directory with the default options. */
    public static DiTPipeline load(Path dir) throws ModelLoadException {
        return load(dir, Options.defaults());
    }

    /** Opens, verifies and loads a model directory. */
    public static DiTPipeline load(Path dir, Options options) throws ModelLoadException {
        return load(ModelDirectory.open(dir, options.verifyDigests()), options);
    }

    /**
     * Loads a verified model directory: the DiT module (checking its exported methods and the
     * shapes of its outputs against the manifest) and, if present and wanted, the classifier.
     */
    public static DiTPipeline load(ModelDirectory directory, Options options) throws ModelLoadException {
        Objects.requireNonNull(directory, "directory");
        ModelManifest.Diffusion d = directory.manifest().diffusion();
        Path manifestFile = directory.root().resolve(ModelManifest.FILE_NAME);
        DiffusionSchedule trainingSchedule;
        try {
            trainingSchedule = DiffusionSchedule.linear(d.trainSteps(), d.betaStart(), d.betaEnd());
        } catch (IllegalArgumentException e) {
            throw new ModelLoadException(Reason.BAD_MANIFEST, manifestFile, "diffusion.beta_start " + d.betaStart()
                    + " and beta_end " + d.betaEnd() + " with train_steps " + d.trainSteps() + " are not a linear schedule: "
                    + e.getMessage(), e);
        }
        NDManager manager = NDManager.newBaseManager(Device.cpu(), "PyTorch");
        manager.setName("fora-model:" + directory.manifest().name());
        CloseGuard uses = new CloseGuard("the pipeline of " + directory.root());
        try {
            long t0 = System.nanoTime();
            Precision precision = options.precision();
            String role = precision.role();
            if (directory.manifest().file(role).isEmpty()) {
                throw new ModelLoadException(Reason.MISSING_FILE, manifestFile, "the manifest lists no "
                        + precision.name().toLowerCase(java.util.Locale.ROOT) + " variant (" + role
                        + "); export one with fora_tools.export " + precision.exportFlag);
            }
            boolean text = directory.manifest().textConditioned();
            TorchScriptModule module = TorchScriptModule.load(manager, directory.file(role),
                    text ? TorchScriptPixArt.METHODS : directory.manifest().hasFusedSteps()
                            ? concat(TorchScriptDiT.METHODS, TorchScriptDiT.FUSED_METHODS) : TorchScriptDiT.METHODS,
                    options.graphOptimizer());
            TorchScriptClassifier classifier = null;
            if (options.loadClassifier() && directory.manifest().hasClassifier()) {
                classifier = TorchScriptClassifier.load(manager, directory.file(ModelManifest.CLASSIFIER),
                        directory.manifest().classes(), options.graphOptimizer(), uses);
            }
            DiTPipeline pipeline = new DiTPipeline(directory, manager, module, classifier, trainingSchedule,
                    options.precision(), uses);
            if (text) {
                pipeline.nullCaption = TorchScriptPixArt.readNullCaption(module, pipeline.config(), manager);
            }
            pipeline.checkShapes();
            if (directory.manifest().hasDecoder()) {
                pipeline.decoder = TorchScriptDecoder.load(manager, directory.file(ModelManifest.DECODER),
                        directory.manifest().decoder(), pipeline.config(), options.graphOptimizer(), uses);
            }
            LOG.info("loaded {} ({}) in {} ms", directory.manifest().name(), directory.root(),
                    (System.nanoTime() - t0) / 1_000_000);
            return pipeline;
        } catch (ModelLoadException | RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /**
     * Calls each exported method once on a batch of 2 (the branches of the first and last
     * block only, so this stays cheap for big models) and checks every output shape against
     * the manifest.
     */
    private void checkShapes() throws ModelLoadException {
        if (nullCaption != null) {
            checkPixArtShapes();
            return;
        }
        DiTConfig c = config();
        int s = c.inputSize();
        long t = c.tokens();
        long d = c.hiddenSize();
        long[] table = dit.parameterShape(CLASS_TABLE).orElse(null);
        if (table != null && table[0] != c.numClasses() + 1L) {
            throw new ModelLoadException(Reason.SHAPE_MISMATCH, dit.file(), "num_classes " + c.numClasses()
                    + " in the manifest does not match the weights' class table (" + CLASS_TABLE + " has " + table[0]
                    + " rows: " + (table[0] - 1) + " classes and the null class)");
        }
        try (NDManager m = manager.newSubManager()) {
            NDArray x = m.zeros(new ai.djl.ndarray.types.Shape(2, c.inChannels(), s, s));
            NDArray ts = m.create(new float[] {999f, 0f});
            NDArray ys = m.create(new long[] {0, c.numClasses()});
            NDArray[] e = dit.call("embed", m, x, ts, ys);
            expect("embed tokens", e[0], 2, t, d);
            expect("embed conditioning", e[1], 2, d);
            NDArray mods = dit.call("modulation", m, e[1])[0];
            expect("modulation", mods, c.depth(), 6, 2, d);
            NDArray shift = mods.get(0, 0); // in the module's own number format
            for (long block : new long[] {0, c.depth() - 1}) {
                expect("attention of block " + block, dit.call("attention", m, block, e[0], shift, shift)[0], 2, t, d);
                expect("mlp of block " + block, dit.call("mlp", m, block, e[0], shift, shift)[0], 2, t, d);
            }
            expect("final_layer", dit.call("final_layer", m, e[0], e[1])[0], 2, c.outChannels(), s, s);
            expect("forward", dit.call("forward", m, x, ts, ys)[0], 2, c.outChannels(), s, s);
            if (manifest().hasFusedSteps()) {
                NDArray[] full = dit.call("forward_features", m, x, ts, ys);
                expect("forward_features output", full[0], 2, c.outChannels(), s, s);
                expect("forward_features features", full[1], c.features(), 2, t, d);
                expect("forward_cached", dit.call("forward_cached", m, x, ts, ys, new PtNDArray[] {(PtNDArray) full[1]},
                        new double[] {1.0})[0], 2, c.outChannels(), s, s);
            }
        } catch (ai.djl.engine.EngineException | IllegalStateException e) {
            throw new ModelLoadException(Reason.SHAPE_MISMATCH, dit.file(), "the module does not match the manifest's "
                    + "architecture: " + e.getMessage(), e);
        }
    }

    /** {@link #checkShapes()} for PixArt-α's calls (text embeddings and a mask; three branches). */
    private void checkPixArtShapes() throws ModelLoadException {
        DiTConfig c = config();
        dev.fora.core.model.ConditioningSpec.Text text = (dev.fora.core.model.ConditioningSpec.Text) c.conditioning();
        int s = c.inputSize();
        long t = c.tokens();
        long d = c.hiddenSize();
        try (NDManager m = manager.newSubManager()) {
            NDArray x = m.zeros(new ai.djl.ndarray.types.Shape(2, c.inChannels(), s, s));
            NDArray ts = m.create(new float[] {999f, 0f});
            NDArray y = m.zeros(new ai.djl.ndarray.types.Shape(2, text.tokens(), text.width()));
            NDArray mask = m.ones(new ai.djl.ndarray.types.Shape(2, text.tokens()));
            NDArray[] e = dit.call("embed", m, x, ts, y);
            expect("embed tokens", e[0], 2, t, d);
            expect("embed timestep embedding", e[1], 2, d);
            expect("embed caption context", e[2], 2, text.tokens(), d);
            expect("modulation", dit.call("modulation", m, e[1])[0], c.depth(), 6, 2, d);
            NDArray shift = m.zeros(new ai.djl.ndarray.types.Shape(2, d));
            for (long block : new long[] {0, c.depth() - 1}) {
                expect("attention of block " + block, dit.call("attention", m, block, e[0], shift, shift)[0], 2, t, d);
                expect("cross_attention of block " + block, dit.call("cross_attention", m, block, e[0], e[2], mask)[0], 2, t,
                        d);
                expect("mlp of block " + block, dit.call("mlp", m, block, e[0], shift, shift)[0], 2, t, d);
            }
            expect("final_layer", dit.call("final_layer", m, e[0], e[1])[0], 2, c.outChannels(), s, s);
            expect("forward", dit.call("forward", m, x, ts, y, mask)[0], 2, c.outChannels(), s, s);
        } catch (ai.djl.engine.EngineException | IllegalStateException e) {
            throw new ModelLoadException(Reason.SHAPE_MISMATCH, dit.file(), "the module does not match the manifest's "
                    + "architecture: " + e.getMessage(), e);
        }
    }

    private void expect(String what, NDArray a, long... shape) throws ModelLoadException {
        long[] got = a.getShape().getShape();
        if (!java.util.Arrays.equals(got, shape)) {
            throw new ModelLoadException(Reason.SHAPE_MISMATCH, dit.file(), what + " returns " + java.util.Arrays.toString(got)
                    + " but the manifest describes " + java.util.Arrays.toString(shape) + "; the module does not match the "
                    + "manifest");
        }
    }

    // ---- what the model is ---------------------------------------------------------------------

    /** The verified model directory. */
    public ModelDirectory directory() {
        return directory;
    }

    /** The manifest. */
    public ModelManifest manifest() {
        return directory.manifest();
    }

    /** The DiT sizes. */
    public DiTConfig config() {
        return directory.manifest().config();
    }

    /**
     * The respaced schedule of {@code steps} sampler steps, from the manifest's training
     * schedule: {@link DiffusionSchedule#linear(int, double, double)} with its
     * {@code train_steps}, {@code beta_start} and {@code beta_end}.
     */
    public DiffusionSchedule schedule(int steps) {
        return trainingSchedule.respace(steps);
    }

    /** The manifest's training schedule ({@code train_steps} linear betas), not respaced. */
    public DiffusionSchedule trainingSchedule() {
        return trainingSchedule;
    }

    /** The latent decoder of the model directory, if it has one. */
    public Optional<TorchScriptDecoder> decoder() {
        return Optional.ofNullable(decoder);
    }

    /**
     * The guided-channel count for a sampler: the manifest's ({@link ModelManifest.Guidance}),
     * e.g. 3 of 4 for an official DiT checkpoint.
     */
    public int guidedChannels(SamplerKind sampler) {
        return manifest().guidance().channelsFor(sampler);
    }

    /** The number format the DiT runs in. */
    public Precision precision() {
        return precision;
    }

    /** The classifier shipped with the model, if any. */
    public Optional<TorchScriptClassifier> classifier() {
        return Optional.ofNullable(classifier);
    }

    /** The model's root manager (its modules and every generation's scopes live under it); for inspection. */
    public NDManager manager() {
        return manager;
    }

    // ---- the three levels of use ---------------------------------------------------------------

    /**
     * Generates images: the whole sampler loop with the cached model (or the whole-model
     * forward, {@link GenerationRequest.Forward}), in native memory that is released before
     * this method returns. Each image depends only on its own part of the request (see the
     * seed rule in {@link GenerationRequest}). The request's step listener
     * ({@link GenerationRequest.Builder#onStep}) is called on this thread after each step.
     *
     * @throws IllegalArgumentException for conditioning the model does not take (a label out
     *     of range), noise of the wrong size, or a policy that does not fit the cache budget
     *     ({@link dev.fora.core.cache.CacheBudgetException})
     * @throws GenerationCancelledException before a step, if this thread was interrupted, the
     *     request's {@link GenerationRequest.Builder#cancel cancel token} was cancelled or the
     *     pipeline is closing; the interrupt status stays set
     * @throws dev.fora.core.sampling.NonFiniteOutputException if a step's model output holds
     *     NaN or infinity (unless {@link GenerationRequest.Builder#checkFinite} is off)
     * @throws IllegalStateException if the pipeline is closed
     */
    public GeneratedImages generate(GenerationRequest request) {
        Objects.requireNonNull(request, "request");
        uses.enter();
        CancelToken run = request.cancel().child();
        running.add(run);
        try {
            if (uses.isClosed()) { // closed after enter, before the token was seen
                run.cancel(CLOSED);
            }
            return generate(request, run);
        } finally {
            running.remove(run);
            uses.exit();
        }
    }

    /** Why {@link #close()} stops running generations. */
    private static final String CLOSED = "the pipeline was closed";

    private GeneratedImages generate(GenerationRequest request, CancelToken cancel) {
        DiTConfig c = config();
        Conditioning conditioning = request.conditioning();
        int n = request.images();
        c.conditioning().check(conditioning, n, false);
        long[] shape = {n, c.inChannels(), c.inputSize(), c.inputSize()};
        int guidedChannels = request.guidedChannels() != 0 ? request.guidedChannels() : guidedChannels(request.sampler());
        if (guidedChannels > c.inChannels()) {
            throw new IllegalArgumentException("cannot guide " + guidedChannels + " channels of a " + c.inChannels()
                    + "-channel latent");
        }
        DiffusionSampler sampler = request.sampler().create(trainingSchedule, request.steps(),
                request.clipDenoised() && manifest().clipDenoised());
        boolean guided = request.cfgScale() != 1.0;
        long t0 = System.nanoTime();
        try (TorchScriptModel model = newModel();
             Generation<NDTensor> generation = request.forward() == GenerationRequest.Forward.STAGED
                     ? Generation.builder(model, request.policy()).steps(request.steps()).images(n).guided(guided)
                             .cacheBudget(request.cacheBudget()).fusedSteps(request.fusedSteps())
                             .checkFinite(false).open() // the loop checks
                     : null) {
            NDArrayOps ops = model.ops();
            DenoisingModel<NDTensor> denoiser = generation != null ? generation : wholeModel(model);
            if (guided) {
                denoiser = new ClassifierFreeGuidance<>(ops, denoiser, request.cfgScale(), model::unconditionalFor,
                        guidedChannels == c.inChannels() ? 0 : guidedChannels);
            }
            NDTensor x = sampler.sample(ops, denoiser, shape, conditioning, checked(request.noiseSource()),
                    LoopControl.DEFAULT.onStep(request.stepListener()).cancelledBy(cancel)
                            .checkFinite(request.checkFinite()));
            float[] latents = ops.toFloats(x);
            GenerationStats stats = generation != null ? generation.stats()
                    : GenerationStats.uncached(new GenerationInfo(request.steps(), c, n, guided, guided ? 2 : 1));
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
            java.util.Arrays.fill(t, (float) step.timestep());
            return model.wholeModel(x, t, conditioning);
        };
    }

    /**
     * Opens a generation for a sampler loop of your own (the low-level API): call
     * {@link DjlGeneration#predict} (or {@link DjlGeneration#predictGuided} when
     * {@code guided}) once per step, and close it. A generation that is never closed holds
     * its native memory until the garbage collector finds it unreachable; it is then released
     * with a warning naming where it was opened.
     *
     * @param images images in the batch
     * @param guided whether each step runs the conditional and unconditional halves (CFG)
     */
    public DjlGeneration openGeneration(CachePolicy policy, int totalSteps, int images, boolean guided) {
        Objects.requireNonNull(policy, "policy");
        uses.enter();
        try {
            TorchScriptModel model = nullCaption != null ? new TorchScriptPixArt(dit, config(), nullCaption, manager)
                    : new TorchScriptDiT(dit, config(), manager, manifest().hasFusedSteps());
            try {
                return new DjlGeneration(model, manifest().guidance().guidedChannels(), Generation.builder(model, policy)
                        .steps(totalSteps).images(images).guided(guided).open(), uses, trainingSchedule.steps());
            } catch (RuntimeException e) {
                model.close();
                throw e;
            }
        } finally {
            uses.exit();
        }
    }

    /**
     * A new view of the model as the core's {@link dev.fora.core.model.DiTModel}, with its own
     * {@link NDArrayOps} (scopes under this pipeline's manager). Close it to release everything
     * it created. For use with the core's {@link Generation} and samplers directly.
     */
    public TorchScriptDiT newDiT() {
        checkOpen();
        if (nullCaption != null) {
            throw new IllegalStateException(manifest().name() + " is a PixArt-α (text-conditioned); use newModel() or "
                    + "newPixArt()");
        }
        return new TorchScriptDiT(dit, config(), manager, manifest().hasFusedSteps());
    }

    private static List<String> concat(List<String> a, List<String> b) {
        List<String> all = new java.util.ArrayList<>(a);
        all.addAll(b);
        return all;
    }

    /**
     * A new view of a PixArt-α model as the core's {@link dev.fora.core.model.DiTModel}, with its
     * own {@link NDArrayOps}; close it to release everything it created.
     *
     * @throws IllegalStateException if the model is a DiT
     */
    public TorchScriptPixArt newPixArt() {
        checkOpen();
        if (nullCaption == null) {
            throw new IllegalStateException(manifest().name() + " is a class-conditioned DiT; use newDiT() or newModel()");
        }
        return new TorchScriptPixArt(dit, config(), nullCaption, manager);
    }

    /** A new view of the model, whatever its family ({@link #newDiT()} or {@link #newPixArt()}). */
    public TorchScriptModel newModel() {
        return nullCaption != null ? newPixArt() : newDiT();
    }

    /** Noise draws must have exactly the size the sampler asks for. */
    private static NoiseSource checked(NoiseSource source) {
        return drawShape -> {
            float[] draw = source.next(drawShape);
            int expected = NoiseSource.count(drawShape);
            if (draw == null || draw.length != expected) {
                throw new IllegalArgumentException("the noise source returned " + (draw == null ? "null" : draw.length
                        + " values") + " for a draw of shape " + java.util.Arrays.toString(drawShape) + " (" + expected
                        + " values)");
            }
            return draw;
        };
    }

    private void checkOpen() {
        if (uses.isClosed()) {
            throw new IllegalStateException("the pipeline of " + directory.root() + " is closed");
        }
    }

    /**
     * Stops running generations at their next step, waits for every call in flight, then frees
     * the model and everything still allocated under it (see "Closing while generating" in the
     * class comment). Idempotent; safe from any thread except from inside one of this
     * pipeline's calls (e.g. a step listener), which would wait for itself and is refused with
     * an {@link IllegalStateException}.
     */
    @Override
    public void close() {
        if (uses.close(() -> running.forEach(t -> t.cancel(CLOSED)))) {
            manager.close();
        }
    }
}
