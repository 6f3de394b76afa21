package dev.fora.spark;

import dev.fora.djl.DiTPipeline;
import dev.fora.djl.TextEncoder;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;

/**
 * The loaded pipelines of this JVM, one per model: an executor loads a model once and shares it
 * across all its tasks (concurrent generations on one {@link DiTPipeline} are safe), so the
 * weights are in memory once per executor, not once per task or partition.
 *
 * <p>A pipeline is never closed: closing it while another task is inside a native call would
 * crash the JVM, and the executor's exit frees it.
 */
final class Pipelines {

    private static final Map<ModelSource, DiTPipeline> LOADED = new HashMap<>();
    /** The text encoders of the models that have one; never closed either. */
    private static final Map<ModelSource, TextEncoder> ENCODERS = new HashMap<>();

    private Pipelines() {
    }

    /**
     * The pipeline of {@code source}, loaded (and its files verified) on first use in this JVM.
     * Before the first load, libtorch's thread counts default to one each: Spark already runs one
     * task per executor core, and more threads per task would oversubscribe the cores. Set
     * {@code -Dai.djl.pytorch.num_threads} in {@code spark.executor.extraJavaOptions} to choose.
     *
     * @throws IOException a {@link dev.fora.djl.ModelLoadException} naming the file at fault, or the
     *     shipped model cannot be extracted
     */
    static synchronized DiTPipeline get(ModelSource source) throws IOException {
        DiTPipeline pipeline = LOADED.get(source);
        if (pipeline == null) {
            defaultToOneThread("ai.djl.pytorch.num_threads");
            defaultToOneThread("ai.djl.pytorch.num_interop_threads");
            pipeline = DiTPipeline.load(source.resolve(), DiTPipeline.Options.defaults().withClassifier(false));
            LOADED.put(source, pipeline);
        }
        return pipeline;
    }

    /**
     * The text encoder of {@code source}'s model directory, loaded on first use in this JVM as its
     * pipeline is, or null if the manifest lists none (a class-conditioned model, or a text model
     * given embeddings). T5-XXL holds 9.5 GB in bfloat16 per executor, beside the DiT.
     *
     * @throws IOException a {@link dev.fora.djl.ModelLoadException} if the listed encoder does not load
     */
    static synchronized TextEncoder textEncoder(ModelSource source) throws IOException {
        DiTPipeline pipeline = get(source);
        if (pipeline.manifest().file(TextEncoder.FILE_ROLE).isEmpty()) {
            return null;
        }
        TextEncoder encoder = ENCODERS.get(source);
        if (encoder == null) {
            encoder = TextEncoder.load(pipeline.directory());
            ENCODERS.put(source, encoder);
        }
        return encoder;
    }

    private static void defaultToOneThread(String property) {
        if (System.getProperty(property) == null) {
            System.setProperty(property, "1");
        }
    }
}
