package dev.fora.djl;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.NoCache;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.recording.Recorder;
import dev.fora.core.recording.Recording;
import dev.fora.core.sampling.CancelToken;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.GenerationCancelledException;
import dev.fora.core.sampling.SamplerKind;
import dev.fora.djl.ModelLoadException.Reason;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.UnaryOperator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An exported diffusion transformer loaded into DJL, ready to generate: the high-level entry
 * point. The model is any {@link ModelFamily} of the DiT kind: a DiT (class labels,
 * {@link TorchScriptDiT}) or a PixArt-α (text embeddings, {@link TorchScriptPixArt}), which is a DiT
 * with cross-attention; the name says the architecture family, not only its first member. A
 * model directory with a latent decoder ({@link TorchScriptDecoder}) has its samples decoded to
 * images. Everything runs on the {@link Options#device() device} the pipeline was loaded on.
 *
 * <pre>{@code
 * try (DiTPipeline pipeline = DiTPipeline.load(Path.of("fora-model/dit-patterns"))) {
 *     GeneratedImages images = pipeline.generate(GenerationRequest.builder(0, 3, 5)
 *             .sampler("ddim").steps(50).cfgScale(1.5).policy("fora:3").seed(42).build());
 *     images.writePngs(Path.of("out"), "sample", 8);
 *     System.out.println(images.stats());
 * }
 * }</pre>
 *
 * <p>One pipeline holds the weights once and serves any number of generations at the same
 * time from different threads: each generation gets its own model view ({@link #newModel()}),
 * native-memory scopes and feature cache. {@link #generate}, {@link #record} and
 * {@link #openGeneration} put a run together in one place, so they run the same trajectory.
 *
 * <p><b>Closing while generating.</b> {@link #close()} may be called while other threads are
 * generating; it never frees memory a running call uses (libtorch would crash the JVM). It
 * marks the pipeline closed, so new calls fail with an {@link IllegalStateException}; asks
 * running {@link #generate} calls to stop before their next step (they throw a
 * {@link GenerationCancelledException}, also an {@code IllegalStateException}); waits for
 * them, for running {@link DjlGeneration} steps and classifier calls to return; then frees the
 * model and every generation still open. So {@code close()} blocks for at most about one
 * sampler step. Views from {@link #newModel()} are not tracked: stop using them before closing.
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
     * @param device the DJL device the model and every generation's arrays live on (default
     *     {@link Device#cpu()}); {@link #load} refuses a GPU the host does not have
     */
    public record Options(boolean verifyDigests, boolean graphOptimizer, boolean loadClassifier, Precision precision,
            Device device) {

        /** Validates. */
        public Options {
            Objects.requireNonNull(precision, "precision");
            Objects.requireNonNull(device, "device");
        }

        /** The defaults. */
        public static Options defaults() {
            return new Options(true, false, true, Precision.FLOAT32, Device.cpu());
        }

        /** With digest verification on or off. */
        public Options withVerifyDigests(boolean on) {
            return new Options(on, graphOptimizer, loadClassifier, precision, device);
        }

        /** With the TorchScript graph optimizer on or off. */
        public Options withGraphOptimizer(boolean on) {
            return new Options(verifyDigests, on, loadClassifier, precision, device);
        }

        /** With or without the classifier. */
        public Options withClassifier(boolean on) {
            return new Options(verifyDigests, graphOptimizer, on, precision, device);
        }

        /** With another precision. */
        public Options withPrecision(Precision p) {
            return new Options(verifyDigests, graphOptimizer, loadClassifier, p, device);
        }

        /** On another device ({@code Device.cpu()}, {@code Device.gpu(n)}). */
        public Options withDevice(Device d) {
            return new Options(verifyDigests, graphOptimizer, loadClassifier, precision, d);
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

    private final ModelDirectory directory;
    private final NDManager manager;
    private final TorchScriptClassifier classifier;
    private final Precision precision;
    private final DiffusionSchedule trainingSchedule;
    /** Makes the views of the loaded module, as the model's family does. */
    private final ModelFamily.Views views;
    private TorchScriptDecoder decoder;
    /** Calls in flight that use native memory; close waits for them. */
    private final CloseGuard uses;
    /** The cancel tokens of the running {@link #generate} calls, cancelled by {@link #close()}. */
    private final Set<CancelToken> running = ConcurrentHashMap.newKeySet();

    private DiTPipeline(ModelDirectory directory, NDManager manager, ModelFamily.Views views,
            TorchScriptClassifier classifier, DiffusionSchedule trainingSchedule, Precision precision, CloseGuard uses) {
        this.uses = uses;
        this.directory = directory;
        this.manager = manager;
        this.views = views;
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
     * shapes of its outputs against the manifest, as its {@link ModelFamily} says) and, if present
     * and wanted, the classifier and the decoder.
     *
     * @throws ModelLoadException naming the file at fault, or with {@link Reason#DEVICE_UNAVAILABLE}
     *     if the options ask for a GPU this host does not have
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
        checkDevice(options.device(), directory.root());
        NDManager manager = NDManager.newBaseManager(options.device(), "PyTorch");
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
            ModelManifest manifest = directory.manifest();
            boolean fused = manifest.hasFusedSteps();
            TorchScriptModule module = TorchScriptModule.load(manager, directory.file(role),
                    manifest.family().methods(fused), options.graphOptimizer());
            ModelFamily.Views views = manifest.family().load(module, manifest.config(), manager, fused);
            TorchScriptClassifier classifier = null;
            if (options.loadClassifier() && directory.manifest().hasClassifier()) {
                classifier = TorchScriptClassifier.load(manager, directory.file(ModelManifest.CLASSIFIER),
                        directory.manifest().classes(), options.graphOptimizer(), uses);
            }
            DiTPipeline pipeline = new DiTPipeline(directory, manager, views, classifier, trainingSchedule,
                    options.precision(), uses);
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

    /** A GPU the host does not have is refused before anything is loaded. */
    private static void checkDevice(Device device, Path root) throws ModelLoadException {
        if (!device.isGpu()) {
            return;
        }
        int gpus = ai.djl.engine.Engine.getEngine("PyTorch").getGpuCount();
        if (device.getDeviceId() >= gpus) {
            throw new ModelLoadException(Reason.DEVICE_UNAVAILABLE, root, "device " + device + " was asked for, but this "
                    + "host has " + (gpus == 0 ? "no GPU that libtorch can use" : gpus + " GPU(s) (gpu:0.." + (gpus - 1) + ")")
                    + "; use the cpu");
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

    /** The device the model and every generation's arrays live on. */
    public Device device() {
        return manager.getDevice();
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
     *     ({@link dev.fora.core.engine.CacheBudgetException})
     * @throws GenerationCancelledException before a step, if this thread was interrupted, the
     *     request's {@link GenerationRequest.Builder#cancel cancel token} was cancelled or the
     *     pipeline is closing; the interrupt status stays set
     * @throws dev.fora.core.sampling.NonFiniteOutputException if a step's model output holds
     *     NaN or infinity (unless {@link GenerationRequest.Builder#checkFinite} is off)
     * @throws IllegalStateException if the pipeline is closed
     */
    public GeneratedImages generate(GenerationRequest request) {
        Objects.requireNonNull(request, "request");
        return run(request, cancel -> generate(request, cancel));
    }

    /** Runs {@code work} as a use of the pipeline, cancelled by the request's token or by {@link #close()}. */
    private GeneratedImages run(GenerationRequest request, java.util.function.Function<CancelToken, GeneratedImages> work) {
        uses.enter();
        CancelToken run = request.cancel().child();
        running.add(run);
        try {
            if (uses.isClosed()) { // closed after enter, before the token was seen
                run.cancel(CLOSED);
            }
            return work.apply(run);
        } finally {
            running.remove(run);
            uses.exit();
        }
    }

    /** Why {@link #close()} stops running generations. */
    private static final String CLOSED = "the pipeline was closed";

    private GeneratedImages generate(GenerationRequest request, CancelToken cancel) {
        return RunPath.sample(this, request, cancel, UnaryOperator.identity());
    }

    /**
     * A recording of an uncached generation and the generation's images.
     *
     * @param recording every step's tokens, modulations, branch outputs and modulated inputs
     * @param images what {@link #generate} returns for the same request
     */
    public record Recorded(Recording recording, GeneratedImages images) {
    }

    /**
     * Generates the images of an uncached request while recording every step as the cache sees
     * it ({@link Recorder}): the same run as {@link #generate} (sampler, guidance, clipping and
     * guided channels come from the one place both use), so the recording is of the trajectory
     * {@code generate} runs, stage by stage. Cancelled and checked like {@code generate}; a
     * cancelled recording returns nothing.
     *
     * @param metadata free text stored with the recording (sampler, seed, model)
     * @throws IllegalArgumentException if the request has a cache policy other than {@code none} or
     *     runs the whole-model forward (a recording needs every stage of every step), or for the
     *     reasons {@link #generate} gives
     * @throws GenerationCancelledException as {@link #generate}
     */
    public Recorded record(GenerationRequest request, Map<String, String> metadata) {
        Objects.requireNonNull(request, "request");
        Objects.requireNonNull(metadata, "metadata");
        if (request.policy() != NoCache.INSTANCE || request.forward() != GenerationRequest.Forward.CACHED) {
            throw new IllegalArgumentException("a recording is of an uncached run through the stages: policy none and the "
                    + "cached forward, not " + request.policy().spec().orElse(String.valueOf(request.policy())) + " on "
                    + request.forward());
        }
        boolean guided = request.cfgScale() != 1.0;
        AtomicReference<Recorder<NDTensor>> recorder = new AtomicReference<>();
        GeneratedImages images = run(request, cancel -> RunPath.sample(this, request, cancel, model -> {
            recorder.set(new Recorder<>(model, request.images(), guided));
            return recorder.get();
        }));
        int[] labels = request.conditioning() instanceof ClassLabels l ? l.labels() : null;
        return new Recorded(recorder.get().recording(labels, metadata), images);
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
            TorchScriptModel model = views.newModel(manager);
            try {
                return new DjlGeneration(model, manifest().guidance().guidedChannels(), RunPath.cached(model, policy,
                        totalSteps, images, guided, Long.MAX_VALUE, true, true), uses, trainingSchedule.steps());
            } catch (RuntimeException e) {
                model.close();
                throw e;
            }
        } finally {
            uses.exit();
        }
    }

    /**
     * A new view of a DiT as the core's {@link dev.fora.core.model.DiTModel}, with its own
     * {@link NDArrayOps} (scopes under this pipeline's manager). Close it to release everything
     * it created. For use with the core's samplers directly.
     *
     * @throws IllegalStateException if the model is of another family ({@link #newModel()} serves any)
     */
    public TorchScriptDiT newDiT() {
        return view(TorchScriptDiT.class);
    }

    /**
     * A new view of a PixArt-α model as the core's {@link dev.fora.core.model.DiTModel}, with its
     * own {@link NDArrayOps}; close it to release everything it created.
     *
     * @throws IllegalStateException if the model is of another family ({@link #newModel()} serves any)
     */
    public TorchScriptPixArt newPixArt() {
        return view(TorchScriptPixArt.class);
    }

    /** A new view of the model, whatever its family, as the family builds it. */
    public TorchScriptModel newModel() {
        checkOpen();
        return views.newModel(manager);
    }

    /** A {@link GenerationService} started: the pipeline's close cancels it like a running generation. */
    void serviceStarted(CancelToken stop) {
        checkOpen();
        running.add(stop);
    }

    void serviceStopped(CancelToken stop) {
        running.remove(stop);
    }

    /** Whether {@link #close()} has begun. */
    boolean isClosing() {
        return uses.isClosed();
    }

    /** Starts a call that uses native memory (a service's pass): close waits for it. */
    void enterCall() {
        uses.enter();
    }

    void exitCall() {
        uses.exit();
    }

    private <M extends TorchScriptModel> M view(Class<M> type) {
        TorchScriptModel model = newModel();
        if (!type.isInstance(model)) {
            model.close();
            throw new IllegalStateException(manifest().name() + " is a " + manifest().family() + " model, which "
                    + type.getSimpleName() + " does not run; use newModel()");
        }
        return type.cast(model);
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
