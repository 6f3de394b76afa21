package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import com.google.gson.JsonObject;
import dev.fora.core.model.BlockLayout;
import dev.fora.core.model.ConditioningSpec;
import dev.fora.core.model.DiTConfig;
import dev.fora.djl.ModelLoadException.Reason;
import java.util.ArrayList;
import java.util.List;

/**
 * DiT ({@code fora_tools.export}): class labels with a null class for guidance, DiT's block
 * layout, {@link TorchScriptDiT} views, and from manifest format 3 the fused step methods.
 */
final class DiTFamily extends ModelFamily {

    /** The label embedding of a DiT: {@code num_classes + 1} rows, the last for the null class. */
    private static final String CLASS_TABLE = "y_embedder.embedding_table.weight";

    @Override
    public String id() {
        return "dit";
    }

    @Override
    public BlockLayout layout() {
        return BlockLayout.DIT;
    }

    /**
     * From format 3, in the form this library calls ({@code forward_cached} takes feature slots
     * and coefficients). Format 2's single-stack {@code forward_cached} is not called: such a
     * directory runs the stages, as format 1.
     */
    @Override
    public boolean hasFusedSteps(int formatVersion) {
        return formatVersion >= 3;
    }

    @Override
    ConditioningSpec conditioning(JsonObject architecture, ModelManifest.Fields fields) throws ModelLoadException {
        return new ConditioningSpec.Classes(fields.positive(architecture, "num_classes", ModelManifest.MAX_CLASSES));
    }

    @Override
    List<String> methods(boolean fused) {
        List<String> all = new ArrayList<>(TorchScriptDiT.METHODS);
        if (fused) {
            all.addAll(TorchScriptDiT.FUSED_METHODS);
        }
        return all;
    }

    /**
     * Checks the class table against {@code num_classes}, then calls each exported method once on
     * a batch of 2 (the branches of the first and last block only, so this stays cheap for big
     * models) and checks every output shape.
     */
    @Override
    Views load(TorchScriptModule module, DiTConfig c, NDManager manager, boolean fused) throws ModelLoadException {
        int s = c.inputSize();
        long t = c.tokens();
        long d = c.hiddenSize();
        long[] table = module.parameterShape(CLASS_TABLE).orElse(null);
        if (table != null && table[0] != c.numClasses() + 1L) {
            throw new ModelLoadException(Reason.SHAPE_MISMATCH, module.file(), "num_classes " + c.numClasses()
                    + " in the manifest does not match the weights' class table (" + CLASS_TABLE + " has " + table[0]
                    + " rows: " + (table[0] - 1) + " classes and the null class)");
        }
        try (NDManager m = manager.newSubManager()) {
            NDArray x = m.zeros(new Shape(2, c.inChannels(), s, s));
            NDArray ts = m.create(new float[] {999f, 0f});
            NDArray ys = m.create(new long[] {0, c.numClasses()});
            NDArray[] e = module.call("embed", m, x, ts, ys);
            expect(module, "embed tokens", e[0], 2, t, d);
            expect(module, "embed conditioning", e[1], 2, d);
            NDArray mods = module.call("modulation", m, e[1])[0];
            expect(module, "modulation", mods, c.depth(), c.layout().modulation().size(), 2, d);
            NDArray shift = mods.get(0, 0); // in the module's own number format
            for (long block : new long[] {0, c.depth() - 1}) {
                expect(module, "attention of block " + block, module.call("attention", m, block, e[0], shift, shift)[0], 2,
                        t, d);
                expect(module, "mlp of block " + block, module.call("mlp", m, block, e[0], shift, shift)[0], 2, t, d);
            }
            expect(module, "final_layer", module.call("final_layer", m, e[0], e[1])[0], 2, c.outChannels(), s, s);
            expect(module, "forward", module.call("forward", m, x, ts, ys)[0], 2, c.outChannels(), s, s);
            if (fused) {
                NDArray[] full = module.call("forward_features", m, x, ts, ys);
                expect(module, "forward_features output", full[0], 2, c.outChannels(), s, s);
                expect(module, "forward_features features", full[1], c.features(), 2, t, d);
                expect(module, "forward_cached", module.call("forward_cached", m, x, ts, ys,
                        new PtNDArray[] {(PtNDArray) full[1]}, new double[] {1.0})[0], 2, c.outChannels(), s, s);
            }
        } catch (ai.djl.engine.EngineException | IllegalStateException e) {
            throw mismatch(module, e);
        }
        return parent -> new TorchScriptDiT(module, c, parent, fused);
    }
}
