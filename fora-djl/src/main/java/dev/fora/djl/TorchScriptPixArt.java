package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.fora.core.model.BlockLayout;
import dev.fora.core.model.BranchSpec;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.ConditioningSpec;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.Modulation;
import dev.fora.core.model.TextEmbeddings;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The core {@link dev.fora.core.model.DiTModel} stages of an exported PixArt-α
 * ({@code fora_tools.export_pixart}): {@link BlockLayout#CROSS_ATTENTION} (gated self-attention,
 * ungated cross-attention to the caption tokens, gated MLP, adaLN-single) conditioned on
 * {@link TextEmbeddings} of {@code model_max_length x caption_channels} with a token mask.
 *
 * <p>The calls: {@code embed(x, t, y)} gives the tokens, the timestep embedding (what
 * {@code modulation} and {@code final_layer} read) and the projected caption (the
 * cross-attention context); {@code modulation(t)} every block's six vectors;
 * {@code attention}, {@code cross_attention(block, x, context, mask)} and {@code mlp} the
 * branches before their gates. The null caption ({@code y_embedder.y_embedding}) is read from
 * the module once, at load.
 *
 * <p>An instance serves one generation at a time and releases everything it created when
 * closed; {@link DiTPipeline#newModel()} makes them, all sharing one loaded module.
 */
public final class TorchScriptPixArt implements TorchScriptModel {

    static final List<String> METHODS = List.of("forward", "embed", "modulation", "attention", "cross_attention", "mlp",
            "final_layer", "null_caption");

    private final TorchScriptModule module;
    private final DiTConfig config;
    private final ConditioningSpec.Text text;
    private final float[] nullCaption;
    private final NDArrayOps ops;
    private long embedCalls;
    private long modulationCalls;
    private final long[][] branchCalls;
    private final long[][] branchRows;
    private long finalCalls;
    private long forwardCalls;

    TorchScriptPixArt(TorchScriptModule module, DiTConfig config, float[] nullCaption, NDManager parent) {
        if (!config.layout().equals(BlockLayout.CROSS_ATTENTION) || !(config.conditioning() instanceof ConditioningSpec.Text t)) {
            throw new IllegalArgumentException("a PixArt runs the cross-attention layout on text, not " + config.layout()
                    + " on " + config.conditioning());
        }
        if (nullCaption.length != t.tokens() * t.width()) {
            throw new IllegalArgumentException("the null caption has " + nullCaption.length + " values, not " + t.tokens()
                    + " x " + t.width());
        }
        this.module = module;
        this.config = config;
        this.text = t;
        this.nullCaption = nullCaption;
        this.ops = new NDArrayOps(parent);
        this.branchCalls = new long[config.branches()][config.depth()];
        this.branchRows = new long[config.branches()][config.depth()];
    }

    /**
     * Reads the null caption of a loaded module ({@code null_caption()}, {@code [tokens, width]})
     * and checks its shape against the manifest.
     *
     * @throws ModelLoadException ({@code SHAPE_MISMATCH}) if the module has none of that shape
     */
    static float[] readNullCaption(TorchScriptModule module, DiTConfig config, NDManager manager) throws ModelLoadException {
        ConditioningSpec.Text t = (ConditioningSpec.Text) config.conditioning();
        try (NDManager m = manager.newSubManager()) {
            NDArray caption = module.call("null_caption", m)[0];
            long[] shape = caption.getShape().getShape();
            if (!Arrays.equals(shape, new long[] {t.tokens(), t.width()}) || caption.getDataType() != DataType.FLOAT32) {
                throw new ModelLoadException(ModelLoadException.Reason.SHAPE_MISMATCH, module.file(), "the null caption "
                        + "(y_embedder.y_embedding) is " + caption.getDataType() + " " + Arrays.toString(shape) + " but the "
                        + "manifest describes " + t.tokens() + " tokens x " + t.width() + " (model_max_length x caption_channels)");
            }
            float[] values = caption.toFloatArray();
            for (float v : values) {
                if (!Float.isFinite(v)) {
                    throw new ModelLoadException(ModelLoadException.Reason.CORRUPT_FILE, module.file(), "the null caption "
                            + "holds a non-finite value");
                }
            }
            return values;
        } catch (ai.djl.engine.EngineException | IllegalStateException e) {
            throw new ModelLoadException(ModelLoadException.Reason.SHAPE_MISMATCH, module.file(), "cannot read the null "
                    + "caption: " + e.getMessage(), e);
        }
    }

    @Override
    public DiTConfig config() {
        return config;
    }

    @Override
    public NDArrayOps ops() {
        return ops;
    }

    @Override
    public TorchScriptCalls calls() {
        return new TorchScriptCalls(embedCalls, modulationCalls, config.layout().branches().stream().map(BranchSpec::name).toList(),
                branchCalls, branchRows, finalCalls, forwardCalls, 0, 0);
    }

    /** The null caption with every token real: one row, {@code [1, tokens, width]}. */
    @Override
    public TextEmbeddings unconditional() {
        boolean[] mask = new boolean[text.tokens()];
        Arrays.fill(mask, true);
        return new TextEmbeddings(text.tokens(), text.width(), nullCaption, mask);
    }

    /**
     * The null caption once per row, each under that row's token mask: what PixArt-α's own
     * samplers feed the unconditional half (they repeat the prompts' mask over the guidance batch).
     */
    @Override
    public TextEmbeddings unconditionalFor(Conditioning conditioning) {
        config.conditioning().check(conditioning, conditioning.size(), true);
        TextEmbeddings c = (TextEmbeddings) conditioning;
        int n = c.size();
        float[] values = new float[n * nullCaption.length];
        for (int r = 0; r < n; r++) {
            System.arraycopy(nullCaption, 0, values, r * nullCaption.length, nullCaption.length);
        }
        return new TextEmbeddings(text.tokens(), text.width(), values, c.mask());
    }

    @Override
    public Embedding<NDTensor> embed(NDTensor x, float[] timesteps, Conditioning conditioning) {
        TextEmbeddings c = checkInputs(x, timesteps, conditioning);
        NDManager m = ops.currentManager();
        int n = c.size();
        NDArray mask = m.create(maskValues(c), new Shape(n, text.tokens()));
        try (NDArray t = m.create(timesteps); NDArray y = m.create(c.values(), new Shape(n, text.tokens(), text.width()))) {
            NDArray[] out = module.call("embed", m, x.array(), t, y);
            embedCalls++;
            return new Embedding<>(new NDTensor(out[0]), new NDTensor(out[1]), new NDTensor(out[2]), new NDTensor(mask));
        } catch (RuntimeException e) {
            mask.close();
            throw e;
        }
    }

    /** adaLN-single for every block in one call ({@code [depth, 6, N, D]}), sliced per block. */
    @Override
    public List<Modulation<NDTensor>> modulations(Embedding<NDTensor> embedding) {
        NDTensor c = embedding.conditioning();
        checkVector(c);
        NDArray all = module.call("modulation", ops.currentManager(), c.array())[0];
        modulationCalls++;
        long n = all.getShape().get(2);
        NDList parts;
        try (NDArray flat = all.reshape(config.depth() * 6L * n, config.hiddenSize())) {
            parts = flat.split(config.depth() * 6L, 0);
        } finally {
            all.close();
        }
        List<Modulation<NDTensor>> mods = new ArrayList<>(config.depth());
        for (int b = 0; b < config.depth(); b++) {
            List<NDTensor> v = new ArrayList<>(6);
            for (int k = 0; k < 6; k++) {
                v.add(new NDTensor(parts.get(b * 6 + k)));
            }
            mods.add(new Modulation<>(v));
        }
        return mods;
    }

    /**
     * {@code attention(block, x, shift_msa, scale_msa)}, {@code cross_attention(block, x,
     * context, mask)} or {@code mlp(block, x, shift_mlp, scale_mlp)}.
     */
    @Override
    public NDTensor branch(int block, int branch, NDTensor x, Modulation<NDTensor> modulation, Embedding<NDTensor> embedding) {
        checkBlock(block);
        checkTokens(x);
        BranchSpec spec = config.layout().branch(branch);
        NDManager m = ops.currentManager();
        NDArray out = switch (spec.kind()) {
            case SELF_ATTENTION -> module.call("attention", m, (long) block, x.array(),
                    modulation.vector(spec.gate() - 2).array(), modulation.vector(spec.gate() - 1).array())[0];
            case MLP -> module.call("mlp", m, (long) block, x.array(), modulation.vector(spec.gate() - 2).array(),
                    modulation.vector(spec.gate() - 1).array())[0];
            case CROSS_ATTENTION -> {
                NDTensor context = embedding.context();
                NDTensor mask = embedding.contextMask();
                if (context == null || mask == null) {
                    throw new IllegalArgumentException("cross-attention needs the embedding's caption context and mask");
                }
                long rows = x.shape()[0];
                if (context.shape()[0] != rows || mask.shape()[0] != rows) {
                    throw new IllegalArgumentException("context rows " + context.shape()[0] + " and mask rows " + mask.shape()[0]
                            + " do not match the " + rows + " token rows");
                }
                yield module.call("cross_attention", m, (long) block, x.array(), context.array(), mask.array())[0];
            }
        };
        branchCalls[branch][block]++;
        branchRows[branch][block] += x.shape()[0];
        return new NDTensor(out);
    }

    @Override
    public NDTensor finalLayer(NDTensor x, Embedding<NDTensor> embedding) {
        NDTensor t = embedding.conditioning();
        checkTokens(x);
        checkVector(t);
        NDArray out = module.call("final_layer", ops.currentManager(), x.array(), t.array())[0];
        finalCalls++;
        return new NDTensor(out);
    }

    /**
     * {@code t2i_modulate(LN(x), shift_msa, scale_msa)} with NDArray operations (LayerNorm
     * without affine, eps 1e-6), for policies that measure block 0's modulated input.
     */
    @Override
    public NDTensor modulatedInput(int block, NDTensor x, Modulation<NDTensor> modulation) {
        checkBlock(block);
        checkTokens(x);
        NDManager m = ops.currentManager();
        List<NDArray> temps = new ArrayList<>();
        try {
            NDArray a = x.array();
            NDArray mean = keep(temps, a.mean(new int[] {-1}, true));
            NDArray centred = keep(temps, a.sub(mean));
            NDArray var = keep(temps, keep(temps, centred.square()).mean(new int[] {-1}, true));
            NDArray std = keep(temps, keep(temps, var.add(1e-6f)).sqrt());
            NDArray normed = keep(temps, centred.div(std));
            NDArray scale = keep(temps, keep(temps, modulation.vector(1).array().add(1f)).expandDims(1));
            NDArray shift = keep(temps, modulation.vector(0).array().expandDims(1));
            NDArray scaled = keep(temps, normed.mul(scale));
            NDArray out = scaled.add(shift);
            out.attach(m);
            return new NDTensor(out);
        } finally {
            for (NDArray t : temps) {
                t.close();
            }
        }
    }

    private static NDArray keep(List<NDArray> temps, NDArray a) {
        temps.add(a);
        return a;
    }

    /** The exported whole-model {@code forward(x, t, y, mask)} in one TorchScript call. */
    @Override
    public NDTensor wholeModel(NDTensor x, float[] timesteps, Conditioning conditioning) {
        TextEmbeddings c = checkInputs(x, timesteps, conditioning);
        NDManager m = ops.currentManager();
        int n = c.size();
        try (NDArray t = m.create(timesteps); NDArray y = m.create(c.values(), new Shape(n, text.tokens(), text.width()));
             NDArray mask = m.create(maskValues(c), new Shape(n, text.tokens()))) {
            NDArray out = module.call("forward", m, x.array(), t, y, mask)[0];
            forwardCalls++;
            return new NDTensor(out);
        }
    }

    @Override
    public void checkLatent(NDTensor x, int n) {
        NDArrayOps.check(x);
        long[] s = x.shape();
        long[] want = {n, config.inChannels(), config.inputSize(), config.inputSize()};
        if (!Arrays.equals(s, want)) {
            throw new IllegalArgumentException("latent shape " + Arrays.toString(s) + " does not match the model: expected "
                    + Arrays.toString(want) + " ([batch, in_channels, input_size, input_size])");
        }
        if (x.array().getDataType() != DataType.FLOAT32) {
            throw new IllegalArgumentException("latent must be float32, got " + x.array().getDataType());
        }
    }

    /** Releases every array this instance created. Idempotent. */
    @Override
    public void close() {
        ops.close();
    }

    // ---- checks ----------------------------------------------------------------------------

    private TextEmbeddings checkInputs(NDTensor x, float[] timesteps, Conditioning conditioning) {
        int n = conditioning.size();
        checkLatent(x, n);
        if (timesteps.length != n) {
            throw new IllegalArgumentException(timesteps.length + " timesteps for " + n + " conditioning rows");
        }
        config.conditioning().check(conditioning, n, true);
        return (TextEmbeddings) conditioning;
    }

    private static float[] maskValues(TextEmbeddings c) {
        boolean[] mask = c.mask();
        float[] out = new float[mask.length];
        for (int i = 0; i < mask.length; i++) {
            out[i] = mask[i] ? 1f : 0f;
        }
        return out;
    }

    private void checkTokens(NDTensor x) {
        long[] s = NDArrayOps.check(x).shape();
        if (s.length != 3 || s[1] != config.tokens() || s[2] != config.hiddenSize()) {
            throw new IllegalArgumentException("tokens shape " + Arrays.toString(s) + " is not [N, " + config.tokens() + ", "
                    + config.hiddenSize() + "]");
        }
    }

    private void checkVector(NDTensor c) {
        long[] s = NDArrayOps.check(c).shape();
        if (s.length != 2 || s[1] != config.hiddenSize()) {
            throw new IllegalArgumentException("timestep embedding shape " + Arrays.toString(s) + " is not [N, "
                    + config.hiddenSize() + "]");
        }
    }

    private void checkBlock(int block) {
        if (block < 0 || block >= config.depth()) {
            throw new IndexOutOfBoundsException("block " + block + " outside 0.." + (config.depth() - 1));
        }
    }
}
