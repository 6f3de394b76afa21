package dev.fora.core.recording;

import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTModel;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.ForwardingDiT;
import dev.fora.core.model.Modulation;
import dev.fora.core.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Records an uncached generation: wrap the model, run a {@link dev.fora.core.engine.Generation}
 * under {@link dev.fora.core.cache.NoCache} (or a plain forward) through the sampler, then take
 * the {@link Recording}:
 * <pre>{@code
 * Recorder<T> recorder = new Recorder<>(model, images, guided);
 * try (Generation<T> g = Generation.builder(recorder, NoCache.INSTANCE).steps(k).images(images).guided(guided).open()) {
 *     sampler.sample(ops, new ClassifierFreeGuidance<>(ops, g, 1.5, model.unconditional()), shape, labels, noise);
 * }
 * Recording r = recorder.recording(labels, Map.of("sampler", "ddim"));
 * }</pre>
 * Every step must run the whole batch through every branch (an uncached run); a cached run
 * is refused. The values are copied out of the engine as they pass ({@link dev.fora.core.tensor.TensorOps#toFloats}).
 *
 * @param <T> tensor type
 */
public final class Recorder<T extends Tensor> extends ForwardingDiT<T> {

    private final int images;
    private final boolean guided;
    private final int rows;
    private final List<Float> timesteps = new ArrayList<>();
    private final List<float[]> tokens = new ArrayList<>();
    private final List<float[][][]> modulations = new ArrayList<>();
    private final List<float[][]> features = new ArrayList<>();
    private final List<float[][]> modulatedInputs = new ArrayList<>();
    private Boolean modulatedInputSupported;

    /**
     * @param model the model to record
     * @param images images in the batch
     * @param guided whether each image runs a conditional and an unconditional row
     */
    public Recorder(DiTModel<T> model, int images, boolean guided) {
        super(model);
        this.images = images;
        this.guided = guided;
        this.rows = guided ? 2 * images : images;
    }

    /** Steps recorded so far. */
    public int steps() {
        return timesteps.size();
    }

    @Override
    public Embedding<T> embed(T x, float[] timesteps, Conditioning conditioning) {
        if (conditioning.size() != rows) {
            throw new IllegalStateException("the recorder was made for " + rows + " rows, the step has " + conditioning.size());
        }
        Embedding<T> e = super.embed(x, timesteps, conditioning);
        this.timesteps.add(timesteps[0]);
        tokens.add(ops().toFloats(e.tokens()));
        features.add(new float[config().features()][]);
        modulatedInputs.add(new float[config().depth()][]);
        return e;
    }

    @Override
    public List<Modulation<T>> modulations(Embedding<T> embedding) {
        List<Modulation<T>> mods = super.modulations(embedding);
        float[][][] step = new float[mods.size()][][];
        for (int b = 0; b < mods.size(); b++) {
            List<T> vectors = mods.get(b).vectors();
            step[b] = new float[vectors.size()][];
            for (int v = 0; v < vectors.size(); v++) {
                step[b][v] = ops().toFloats(vectors.get(v));
            }
        }
        modulations.add(step);
        return mods;
    }

    @Override
    public T branch(int block, int branch, T x, Modulation<T> modulation, Embedding<T> embedding) {
        if (x.shape()[0] != rows) {
            throw new IllegalStateException("a recording needs an uncached generation: block " + block + " branch " + branch
                    + " ran " + x.shape()[0] + " of " + rows + " rows");
        }
        int s = steps() - 1;
        if (branch == 0 && !Boolean.FALSE.equals(modulatedInputSupported)) {
            try (T mi = delegate().modulatedInput(block, x, modulation)) {
                modulatedInputs.get(s)[block] = ops().toFloats(mi);
                modulatedInputSupported = true;
            } catch (UnsupportedOperationException e) {
                modulatedInputSupported = false;
            }
        }
        T value = super.branch(block, branch, x, modulation, embedding);
        features.get(s)[config().feature(block, branch)] = ops().toFloats(value);
        return value;
    }

    /**
     * The recording of the steps run so far.
     *
     * @param labels the class label of each image, or null
     * @param metadata free text about the run (sampler, guidance scale, seed, model)
     * @throws IllegalStateException if no step ran, or a step did not run every branch
     */
    public Recording recording(int[] labels, Map<String, String> metadata) {
        int k = steps();
        if (k == 0) {
            throw new IllegalStateException("nothing recorded: no step ran");
        }
        float[] t = new float[k];
        for (int s = 0; s < k; s++) {
            t[s] = timesteps.get(s);
            for (float[] f : features.get(s)) {
                if (f == null) {
                    throw new IllegalStateException("step " + s + " did not run every branch: a recording needs an uncached"
                            + " generation");
                }
            }
        }
        boolean mi = Boolean.TRUE.equals(modulatedInputSupported);
        return new Recording(config(), images, guided, labels, metadata, t, tokens.toArray(new float[0][]),
                modulations.toArray(new float[0][][][]), features.toArray(new float[0][][]),
                mi ? modulatedInputs.toArray(new float[0][][]) : null);
    }
}
