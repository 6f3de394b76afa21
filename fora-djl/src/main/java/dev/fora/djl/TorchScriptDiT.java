package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.DiTModel;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.Modulation;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The core {@link DiTModel} stages implemented by calls of an exported TorchScript DiT
 * ({@code embed}, {@code modulation}, {@code attention}, {@code mlp}, {@code final_layer}).
 *
 * <p>An instance serves one generation at a time: it owns its {@link NDArrayOps} (one current
 * scope), and closing it releases every array it created. Create one per generation or per
 * thread with {@link DiTPipeline#newDiT()}; they all share the pipeline's loaded module, which
 * holds the weights once.
 */
public final class TorchScriptDiT implements DiTModel<NDTensor>, AutoCloseable {

    static final List<String> METHODS = List.of("forward", "embed", "modulation", "attention", "mlp", "final_layer");

    private final TorchScriptModule module;
    private final DiTConfig config;
    private final NDArrayOps ops;
    private long embedCalls;
    private long modulationCalls;
    private final long[] attentionCalls;
    private final long[] mlpCalls;
    private long finalCalls;
    private long forwardCalls;

    TorchScriptDiT(TorchScriptModule module, DiTConfig config, NDManager parent) {
        this.module = module;
        this.config = config;
        this.ops = new NDArrayOps(parent);
        this.attentionCalls = new long[config.depth()];
        this.mlpCalls = new long[config.depth()];
    }

    @Override
    public DiTConfig config() {
        return config;
    }

    @Override
    public NDArrayOps ops() {
        return ops;
    }

    /** The TorchScript calls this instance has made so far. */
    public TorchScriptCalls calls() {
        return new TorchScriptCalls(embedCalls, modulationCalls, attentionCalls, mlpCalls, finalCalls, forwardCalls);
    }

    @Override
    public Embedding<NDTensor> embed(NDTensor x, float[] timesteps, int[] labels) {
        NDArray[] out = callOnInputs("embed", x, timesteps, labels);
        embedCalls++;
        return new Embedding<>(new NDTensor(out[0]), new NDTensor(out[1]));
    }

    @Override
    public Modulation<NDTensor> modulation(int block, NDTensor c) {
        checkBlock(block);
        List<Modulation<NDTensor>> all = modulations(c);
        for (int b = 0; b < all.size(); b++) {
            if (b != block) {
                close(all.get(b));
            }
        }
        return all.get(block);
    }

    /** All blocks' adaLN vectors from one TorchScript call ({@code [depth, 6, N, D]}), sliced per block. */
    @Override
    public List<Modulation<NDTensor>> modulations(NDTensor c) {
        checkConditioning(c);
        NDManager m = ops.currentManager();
        NDArray all = module.call("modulation", m, c.array())[0];
        modulationCalls++;
        // [depth, 6, N, D] -> depth*6 arrays [N, D] in two native calls (a reshape and a split).
        long n = all.getShape().get(2);
        NDList parts;
        try (NDArray flat = all.reshape(config.depth() * 6L * n, config.hiddenSize())) {
            parts = flat.split(config.depth() * 6L, 0);
        } finally {
            all.close(); // the parts keep their storage alive in libtorch
        }
        List<Modulation<NDTensor>> mods = new ArrayList<>(config.depth());
        for (int b = 0; b < config.depth(); b++) {
            NDTensor[] v = new NDTensor[6];
            for (int k = 0; k < 6; k++) {
                v[k] = new NDTensor(parts.get(b * 6 + k));
            }
            mods.add(new Modulation<>(v[0], v[1], v[2], v[3], v[4], v[5]));
        }
        return mods;
    }

    @Override
    public NDTensor attention(int block, NDTensor x, NDTensor shift1, NDTensor scale1) {
        checkBlock(block);
        checkTokens(x);
        NDArray out = module.call("attention", ops.currentManager(), (long) block, x.array(), shift1.array(),
                scale1.array())[0];
        attentionCalls[block]++;
        return new NDTensor(out);
    }

    @Override
    public NDTensor mlp(int block, NDTensor x, NDTensor shift2, NDTensor scale2) {
        checkBlock(block);
        checkTokens(x);
        NDArray out = module.call("mlp", ops.currentManager(), (long) block, x.array(), shift2.array(), scale2.array())[0];
        mlpCalls[block]++;
        return new NDTensor(out);
    }

    @Override
    public NDTensor finalLayer(NDTensor x, NDTensor c) {
        checkTokens(x);
        checkConditioning(c);
        NDArray out = module.call("final_layer", ops.currentManager(), x.array(), c.array())[0];
        finalCalls++;
        return new NDTensor(out);
    }

    /**
     * {@code modulate(LN(x), shift, scale)} with NDArray operations (LayerNorm without affine,
     * eps 1e-6), for policies that measure the change of block 0's modulated input.
     */
    @Override
    public NDTensor modulatedInput(int block, NDTensor x, NDTensor shift1, NDTensor scale1) {
        checkBlock(block);
        checkTokens(x);
        NDManager m = ops.currentManager();
        List<NDArray> temps = new ArrayList<>();
        try {
            NDArray a = x.array();
            NDArray mean = keep(temps, a.mean(new int[] {-1}, true));
            NDArray centred = keep(temps, a.sub(mean));
            NDArray sq = keep(temps, centred.square());
            NDArray var = keep(temps, sq.mean(new int[] {-1}, true));
            NDArray std = keep(temps, keep(temps, var.add(1e-6f)).sqrt());
            NDArray normed = keep(temps, centred.div(std));
            NDArray scale = keep(temps, keep(temps, scale1.array().add(1f)).expandDims(1));
            NDArray shift = keep(temps, shift1.array().expandDims(1));
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

    /**
     * The exported whole-model {@code forward(x, t, y)} in one TorchScript call: the reference
     * the stage-by-stage path is compared with. The result is in the current scope.
     */
    public NDTensor wholeModel(NDTensor x, float[] timesteps, int[] labels) {
        NDArray out = callOnInputs("forward", x, timesteps, labels)[0];
        forwardCalls++;
        return new NDTensor(out);
    }

    /**
     * Checks the model inputs {@code (x, t, y)} and calls {@code method(x, t, y)} with the
     * timesteps and labels as temporary arrays; the outputs are in the current scope.
     */
    private NDArray[] callOnInputs(String method, NDTensor x, float[] timesteps, int[] labels) {
        checkLatent(x, labels.length);
        if (timesteps.length != labels.length) {
            throw new IllegalArgumentException(timesteps.length + " timesteps for " + labels.length + " labels");
        }
        checkLabels(labels, true);
        NDManager m = ops.currentManager();
        try (NDArray t = m.create(timesteps); NDArray y = m.create(toLongs(labels))) {
            return module.call(method, m, x.array(), t, y);
        }
    }

    /** Releases every array this instance created. Idempotent. */
    @Override
    public void close() {
        ops.close();
    }

    // ---- checks ----------------------------------------------------------------------------

    private static long[] toLongs(int[] labels) {
        long[] y = new long[labels.length];
        for (int i = 0; i < y.length; i++) {
            y[i] = labels[i];
        }
        return y;
    }

    /** Labels must be {@code 0..numClasses-1}, or the null class {@code numClasses} if allowed. */
    void checkLabels(int[] labels, boolean allowNull) {
        if (labels.length == 0) {
            throw new IllegalArgumentException("at least one label is needed");
        }
        int max = allowNull ? config.numClasses() : config.numClasses() - 1;
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 || labels[i] > max) {
                throw new IllegalArgumentException("label " + labels[i] + " at position " + i + " is out of range: the model has "
                        + config.numClasses() + " classes (0.." + (config.numClasses() - 1) + ")"
                        + (allowNull ? " and the null class " + config.nullLabel() : ""));
            }
        }
    }

    /** The latent must be float32 {@code [n, C, H, W]}. */
    void checkLatent(NDTensor x, int n) {
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

    private void checkTokens(NDTensor x) {
        long[] s = NDArrayOps.check(x).shape();
        if (s.length != 3 || s[1] != config.tokens() || s[2] != config.hiddenSize()) {
            throw new IllegalArgumentException("tokens shape " + Arrays.toString(s) + " is not [N, " + config.tokens() + ", "
                    + config.hiddenSize() + "]");
        }
    }

    private void checkConditioning(NDTensor c) {
        long[] s = NDArrayOps.check(c).shape();
        if (s.length != 2 || s[1] != config.hiddenSize()) {
            throw new IllegalArgumentException("conditioning shape " + Arrays.toString(s) + " is not [N, "
                    + config.hiddenSize() + "]");
        }
    }

    private void checkBlock(int block) {
        if (block < 0 || block >= config.depth()) {
            throw new IndexOutOfBoundsException("block " + block + " outside 0.." + (config.depth() - 1));
        }
    }

    private static void close(Modulation<NDTensor> m) {
        m.shift1().close();
        m.scale1().close();
        m.gate1().close();
        m.shift2().close();
        m.scale2().close();
        m.gate2().close();
    }
}
