package dev.fora.djl;

import ai.djl.ndarray.NDArray;
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
 * cross-attention context); {@code modulation(t)} every block's modulation vectors;
 * {@code attention}, {@code cross_attention(block, x, context, mask)} and {@code mlp} the
 * branches before their gates. The null caption ({@code y_embedder.y_embedding}) is read from
 * the module once, at load.
 *
 * <p>An instance serves one generation at a time and releases everything it created when
 * closed; {@link DiTPipeline#newModel()} makes them, all sharing one loaded module.
 */
public final class TorchScriptPixArt extends TorchScriptStages {

    static final List<String> METHODS = List.of("forward", "embed", "modulation", "attention", "cross_attention", "mlp",
            "final_layer", "null_caption");

    private final ConditioningSpec.Text text;
    private final float[] nullCaption;

    TorchScriptPixArt(TorchScriptModule module, DiTConfig config, float[] nullCaption, NDManager parent) {
        super(module, config, parent);
        if (!config.layout().equals(BlockLayout.CROSS_ATTENTION) || !(config.conditioning() instanceof ConditioningSpec.Text t)) {
            throw new IllegalArgumentException("a PixArt runs the cross-attention layout on text, not " + config.layout()
                    + " on " + config.conditioning());
        }
        if (nullCaption.length != t.tokens() * t.width()) {
            throw new IllegalArgumentException("the null caption has " + nullCaption.length + " values, not " + t.tokens()
                    + " x " + t.width());
        }
        this.text = t;
        this.nullCaption = nullCaption;
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
    public TorchScriptCalls calls() {
        return calls(0, 0, 0, 0, 0, 0);
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
            case SELF_ATTENTION -> module.call("attention", m, (long) block, x.array(), shift(branch, modulation),
                    scale(branch, modulation))[0];
            case MLP -> module.call("mlp", m, (long) block, x.array(), shift(branch, modulation),
                    scale(branch, modulation))[0];
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
        countBranch(branch, block, x.shape()[0]);
        return new NDTensor(out);
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
}
