package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.google.gson.JsonObject;
import dev.fora.core.model.BlockLayout;
import dev.fora.core.model.ConditioningSpec;
import dev.fora.core.model.DiTConfig;
import java.util.List;

/**
 * PixArt-α ({@code fora_tools.export_pixart}): text embeddings of {@code model_max_length x
 * caption_channels} with a token mask, {@link BlockLayout#CROSS_ATTENTION}, {@link TorchScriptPixArt}
 * views whose unconditional rows are the module's null caption (read once, at load), no fused steps.
 */
final class PixArtFamily extends ModelFamily {

    @Override
    public String id() {
        return "pixart-alpha";
    }

    @Override
    public BlockLayout layout() {
        return BlockLayout.CROSS_ATTENTION;
    }

    @Override
    public boolean hasFusedSteps(int formatVersion) {
        return false;
    }

    @Override
    ConditioningSpec conditioning(JsonObject architecture, ModelManifest.Fields fields) throws ModelLoadException {
        return new ConditioningSpec.Text(fields.positive(architecture, "model_max_length", ModelManifest.MAX_CAPTION_TOKENS),
                fields.positive(architecture, "caption_channels", ModelManifest.MAX_CAPTION_CHANNELS));
    }

    @Override
    List<String> methods(boolean fused) {
        return TorchScriptPixArt.METHODS;
    }

    /**
     * Reads the null caption, then calls each exported method once on a batch of 2 (the branches
     * of the first and last block only) and checks every output shape.
     */
    @Override
    Views load(TorchScriptModule module, DiTConfig c, NDManager manager, boolean fused) throws ModelLoadException {
        float[] nullCaption = TorchScriptPixArt.readNullCaption(module, c, manager);
        ConditioningSpec.Text text = (ConditioningSpec.Text) c.conditioning();
        int s = c.inputSize();
        long t = c.tokens();
        long d = c.hiddenSize();
        try (NDManager m = manager.newSubManager()) {
            NDArray x = m.zeros(new Shape(2, c.inChannels(), s, s));
            NDArray ts = m.create(new float[] {999f, 0f});
            NDArray y = m.zeros(new Shape(2, text.tokens(), text.width()));
            NDArray mask = m.ones(new Shape(2, text.tokens()));
            NDArray[] e = module.call("embed", m, x, ts, y);
            expect(module, "embed tokens", e[0], 2, t, d);
            expect(module, "embed timestep embedding", e[1], 2, d);
            expect(module, "embed caption context", e[2], 2, text.tokens(), d);
            expect(module, "modulation", module.call("modulation", m, e[1])[0], c.depth(), c.layout().modulation().size(), 2,
                    d);
            NDArray shift = m.zeros(new Shape(2, d));
            for (long block : new long[] {0, c.depth() - 1}) {
                expect(module, "attention of block " + block, module.call("attention", m, block, e[0], shift, shift)[0], 2,
                        t, d);
                expect(module, "cross_attention of block " + block, module.call("cross_attention", m, block, e[0], e[2],
                        mask)[0], 2, t, d);
                expect(module, "mlp of block " + block, module.call("mlp", m, block, e[0], shift, shift)[0], 2, t, d);
            }
            expect(module, "final_layer", module.call("final_layer", m, e[0], e[1])[0], 2, c.outChannels(), s, s);
            expect(module, "forward", module.call("forward", m, x, ts, y, mask)[0], 2, c.outChannels(), s, s);
        } catch (ai.djl.engine.EngineException | IllegalStateException e) {
            throw mismatch(module, e);
        }
        return parent -> new TorchScriptPixArt(module, c, nullCaption, parent);
    }
}
