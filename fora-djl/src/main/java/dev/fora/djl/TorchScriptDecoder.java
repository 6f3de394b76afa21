package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.fora.core.model.DiTConfig;
import dev.fora.djl.ModelLoadException.Reason;
import dev.fora.djl.ModelManifest.DecoderSpec;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * The latent decoder of a model directory ({@code decoder.pt}, written by
 * {@code fora_tools.add_decoder}): the decoding half of Stable Diffusion's
 * {@code AutoencoderKL}, {@code forward(z) = decoder(post_quant_conv(z / scale_factor))}, from
 * the model's latents {@code [N, C, H, W]} to images {@code [N, 3, H*u, W*u]} in about [-1, 1]
 * ({@code u} = {@link DecoderSpec#upsampling()}, 8 for SD's VAE).
 *
 * <p>Loaded by {@link DiTPipeline#load}, which checks that its latent channels and scale agree
 * with the model; the pipeline decodes every generation's latents with it. Thread-safe: one
 * loaded module serves concurrent calls; each call's arrays are released before it returns
 * (or attached to the manager the caller names).
 */
public final class TorchScriptDecoder {

    static final List<String> METHODS = List.of("forward");

    private final TorchScriptModule module;
    private final DecoderSpec spec;
    private final DiTConfig config;
    /** The pipeline's guard: every call is a use of the pipeline, so closing it waits for decodes in flight. */
    private final CloseGuard uses;

    private TorchScriptDecoder(TorchScriptModule module, DecoderSpec spec, DiTConfig config, CloseGuard uses) {
        this.module = module;
        this.spec = spec;
        this.config = config;
        this.uses = uses;
    }

    /**
     * Loads {@code file} into a sub-manager of {@code parent} and checks it against the manifest:
     * the {@code post_quant_conv} weights take {@code latent_channels} channels, and a trial
     * decode of a small latent gives {@code out_channels} channels at {@code upsampling} times
     * the side.
     *
     * @throws ModelLoadException {@code CORRUPT_FILE} if it is not a loadable module,
     *     {@code SHAPE_MISMATCH} if it does not fit the manifest or the model
     */
    static TorchScriptDecoder load(NDManager parent, Path file, DecoderSpec spec, DiTConfig config, boolean graphOptimizer,
            CloseGuard uses) throws ModelLoadException {
        TorchScriptModule module = TorchScriptModule.load(parent, file, METHODS, graphOptimizer);
        try {
            TorchScriptDecoder decoder = new TorchScriptDecoder(module, spec, config, uses);
            decoder.check();
            return decoder;
        } catch (ModelLoadException | RuntimeException e) {
            module.close();
            throw e;
        }
    }

    private void check() throws ModelLoadException {
        if (spec.latentChannels() != config.inChannels()) {
            throw new ModelLoadException(Reason.SHAPE_MISMATCH, module.file(), "the decoder takes " + spec.latentChannels()
                    + "-channel latents but the model makes " + config.inChannels());
        }
        long[] conv = module.parameterShape("post_quant_conv.weight").orElse(null);
        if (conv != null && (conv.length != 4 || conv[1] != spec.latentChannels())) {
            throw new ModelLoadException(Reason.SHAPE_MISMATCH, module.file(), "post_quant_conv.weight is "
                    + Arrays.toString(conv) + ": the decoder takes " + (conv.length > 1 ? conv[1] : "?")
                    + "-channel latents, but the manifest and the model have " + spec.latentChannels());
        }
        int side = Math.min(config.inputSize(), 8);
        try (NDManager m = module.newScope()) {
            NDArray z = m.zeros(new Shape(1, spec.latentChannels(), side, side));
            long[] got = module.call("forward", m, z)[0].getShape().getShape();
            long[] want = {1, spec.outChannels(), (long) side * spec.upsampling(), (long) side * spec.upsampling()};
            if (!Arrays.equals(got, want)) {
                throw new ModelLoadException(Reason.SHAPE_MISMATCH, module.file(), "the decoder turns a " + side + "x" + side
                        + " latent into " + Arrays.toString(got) + " but the manifest describes " + Arrays.toString(want)
                        + " (out_channels, upsampling)");
            }
        } catch (ai.djl.engine.EngineException | IllegalStateException e) {
            throw new ModelLoadException(Reason.SHAPE_MISMATCH, module.file(), "the decoder does not take the model's "
                    + config.inChannels() + "-channel latents: " + e.getMessage(), e);
        }
    }

    /** What the manifest says about the decoder. */
    public DecoderSpec spec() {
        return spec;
    }

    /** The file the decoder was loaded from. */
    public Path file() {
        return module.file();
    }

    /** The image shape {@code [N, out_channels, H*u, W*u]} of latents of {@code latentShape}. */
    public long[] imageShape(long[] latentShape) {
        return new long[] {latentShape[0], spec.outChannels(), latentShape[2] * spec.upsampling(),
            latentShape[3] * spec.upsampling()};
    }

    /**
     * Decodes latents {@code [N, C, H, W]} (the model's, unscaled) to images; the result is in
     * {@code out}.
     *
     * @throws IllegalArgumentException if the latents are not float32 of the model's shape
     */
    public NDArray decode(NDArray latents, NDManager out) {
        long[] s = latents.getShape().getShape();
        if (s.length != 4 || s[0] < 1 || s[1] != config.inChannels() || s[2] != config.inputSize() || s[3] != config.inputSize()) {
            throw new IllegalArgumentException("latents of shape " + Arrays.toString(s) + " do not fit the decoder: expected [N, "
                    + config.inChannels() + ", " + config.inputSize() + ", " + config.inputSize() + "]");
        }
        if (latents.getDataType() != DataType.FLOAT32) {
            throw new IllegalArgumentException("latents must be float32, got " + latents.getDataType());
        }
        uses.enter();
        try {
            return module.call("forward", out, latents)[0];
        } finally {
            uses.exit();
        }
    }

    /**
     * Decodes latents given as floats ({@code [N, C, H, W]} row-major) and returns the image
     * floats ({@link #imageShape}); all native memory is released before it returns.
     */
    public float[] decode(float[] latents, long[] latentShape) {
        uses.enter();
        try (NDManager m = module.newScope()) {
            NDArray z = m.create(latents, new Shape(latentShape));
            return decode(z, m).toFloatArray();
        } finally {
            uses.exit();
        }
    }
}
