package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.google.gson.JsonObject;
import dev.fora.core.model.BlockLayout;
import dev.fora.core.model.ConditioningSpec;
import dev.fora.core.model.DiTConfig;
import dev.fora.djl.ModelLoadException.Reason;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/**
 * A family of exported diffusion transformers, as a manifest's {@code architecture.family}
 * names it: its block layout and conditioning, the TorchScript methods its export has, how its
 * outputs are checked at load, how a model view ({@link TorchScriptModel}) is built over the
 * loaded module (with the family's unconditional rows for guidance), and whether it has fused
 * steps.
 *
 * <p>The families are {@link #DIT} and {@link #PIXART_ALPHA}. A new family is one subclass in
 * this package, listed in {@link #forId}'s table; nothing else tells families apart.
 */
public abstract class ModelFamily {

    /** DiT (Peebles &amp; Xie): class labels, self-attention and MLP under adaLN-Zero ({@code "dit"}). */
    public static final ModelFamily DIT = new DiTFamily();
    /** PixArt-α: text embeddings, cross-attention, adaLN-single ({@code "pixart-alpha"}). */
    public static final ModelFamily PIXART_ALPHA = new PixArtFamily();

    /** Every family this library loads. */
    private static final List<ModelFamily> ALL = List.of(DIT, PIXART_ALPHA);

    /** Families are subclasses in this package. */
    ModelFamily() {
    }

    /** The manifest's {@code architecture.family} value. */
    public abstract String id();

    /** The block layout of every model of the family. */
    public abstract BlockLayout layout();

    /** Whether an export of manifest format {@code formatVersion} has the fused step methods this library calls. */
    public abstract boolean hasFusedSteps(int formatVersion);

    /**
     * The family named {@code id}.
     *
     * @throws IllegalArgumentException naming the families there are
     */
    public static ModelFamily forId(String id) {
        for (ModelFamily f : ALL) {
            if (f.id().equals(id)) {
                return f;
            }
        }
        throw new IllegalArgumentException("architecture.family \"" + id + "\" is not supported ("
                + ALL.stream().map(f -> "\"" + f.id() + "\"").collect(Collectors.joining(" or ")) + ")");
    }

    @Override
    public String toString() {
        return id();
    }

    // ---- what the library needs of a family (package-private) -----------------------------------

    /** The conditioning of a model, from the manifest's {@code architecture} section. */
    abstract ConditioningSpec conditioning(JsonObject architecture, ModelManifest.Fields fields) throws ModelLoadException;

    /** The TorchScript methods the export must have ({@code fused}: with the fused step methods). */
    abstract List<String> methods(boolean fused);

    /**
     * Reads what the family's views need from a loaded module and checks the shapes of its
     * outputs against the manifest.
     *
     * @param fused whether the manifest says the module has fused steps
     * @return the factory of the module's model views
     * @throws ModelLoadException ({@code SHAPE_MISMATCH}) if the module does not match the manifest
     */
    abstract Views load(TorchScriptModule module, DiTConfig config, NDManager manager, boolean fused)
            throws ModelLoadException;

    /** Makes the model views of one loaded module. */
    @FunctionalInterface
    interface Views {
        /** A new view whose arrays live under {@code parent}. */
        TorchScriptModel newModel(NDManager parent);
    }

    /** Fails unless {@code a} has {@code shape}; {@code what} names the output. */
    static void expect(TorchScriptModule module, String what, NDArray a, long... shape) throws ModelLoadException {
        long[] got = a.getShape().getShape();
        if (!Arrays.equals(got, shape)) {
            throw new ModelLoadException(Reason.SHAPE_MISMATCH, module.file(), what + " returns " + Arrays.toString(got)
                    + " but the manifest describes " + Arrays.toString(shape) + "; the module does not match the manifest");
        }
    }

    /** The load-time error for a module whose calls fail on inputs of the manifest's shapes. */
    static ModelLoadException mismatch(TorchScriptModule module, RuntimeException e) {
        return new ModelLoadException(Reason.SHAPE_MISMATCH, module.file(), "the module does not match the manifest's "
                + "architecture: " + e.getMessage(), e);
    }
}
