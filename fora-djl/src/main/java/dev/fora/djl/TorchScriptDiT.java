package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.engine.PtNDArray;
import dev.fora.core.model.BlockLayout;
import dev.fora.core.model.BranchSpec;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.DiTModel;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.FusedSteps;
import dev.fora.core.model.Modulation;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * The core {@link DiTModel} stages implemented by calls of an exported TorchScript DiT
 * ({@code embed}, {@code modulation}, {@code attention}, {@code mlp}, {@code final_layer}):
 * DiT's block layout ({@link BlockLayout#DIT}), class labels.
 *
 * <p>An instance serves one generation at a time: it owns its {@link NDArrayOps} (one current
 * scope), and closing it releases every array it created. Create one per generation or per
 * thread with {@link DiTPipeline#newDiT()}; they all share the pipeline's loaded module, which
 * holds the weights once.
 */
public final class TorchScriptDiT implements TorchScriptModel {

    static final List<String> METHODS = List.of("forward", "embed", "modulation", "attention", "mlp", "final_layer");
    /** The fused step methods of manifest format 2. */
    static final List<String> FUSED_METHODS = List.of("forward_features", "forward_cached");

    private final TorchScriptModule module;
    private final DiTConfig config;
    private final NDArrayOps ops;
    private long embedCalls;
    private long modulationCalls;
    private final long[][] branchCalls;
    private final long[][] branchRows;
    private long finalCalls;
    private long forwardCalls;
    private long fullStepCalls;
    private long cachedStepCalls;
    private final boolean fused;

    TorchScriptDiT(TorchScriptModule module, DiTConfig config, NDManager parent, boolean fused) {
        if (!config.layout().equals(BlockLayout.DIT)) {
            throw new IllegalArgumentException("the TorchScript DiT runs DiT's block layout, not " + config.layout());
        }
        this.module = module;
        this.config = config;
        this.fused = fused;
        this.ops = new NDArrayOps(parent);
        this.branchCalls = new long[config.branches()][config.depth()];
        this.branchRows = new long[config.branches()][config.depth()];
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
        return new TorchScriptCalls(embedCalls, modulationCalls, config.layout().branches().stream().map(BranchSpec::name).toList(),
                branchCalls, branchRows, finalCalls, forwardCalls, fullStepCalls, cachedStepCalls);
    }

    @Override
    public Embedding<NDTensor> embed(NDTensor x, float[] timesteps, Conditioning conditioning) {
        NDArray[] out = callOnInputs("embed", x, timesteps, conditioning);
        embedCalls++;
        return new Embedding<>(new NDTensor(out[0]), new NDTensor(out[1]));
    }

    /** All blocks' adaLN vectors from one TorchScript call ({@code [depth, 6, N, D]}), sliced per block. */
    @Override
    public List<Modulation<NDTensor>> modulations(Embedding<NDTensor> embedding) {
        NDTensor c = embedding.conditioning();
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
            List<NDTensor> v = new ArrayList<>(6);
            for (int k = 0; k < 6; k++) {
                v.add(new NDTensor(parts.get(b * 6 + k)));
            }
            mods.add(new Modulation<>(v));
        }
        return mods;
    }

    /**
     * {@code attention(block, x, shift_msa, scale_msa)} for branch {@code attn},
     * {@code mlp(block, x, shift_mlp, scale_mlp)} for branch {@code mlp}.
     */
    @Override
    public NDTensor branch(int block, int branch, NDTensor x, Modulation<NDTensor> modulation, Embedding<NDTensor> embedding) {
        checkBlock(block);
        checkTokens(x);
        BranchSpec spec = config.layout().branch(branch);
        String method = spec.kind() == BranchSpec.Kind.SELF_ATTENTION ? "attention" : "mlp";
        // DiT's vectors come in threes, (shift, scale, gate), per branch.
        NDArray out = module.call(method, ops.currentManager(), (long) block, x.array(),
                modulation.vector(spec.gate() - 2).array(), modulation.vector(spec.gate() - 1).array())[0];
        branchCalls[branch][block]++;
        branchRows[branch][block] += x.shape()[0];
        return new NDTensor(out);
    }

    @Override
    public NDTensor finalLayer(NDTensor x, Embedding<NDTensor> embedding) {
        NDTensor c = embedding.conditioning();
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
    public NDTensor modulatedInput(int block, NDTensor x, Modulation<NDTensor> modulation) {
        NDTensor shift1 = modulation.vector(0);
        NDTensor scale1 = modulation.vector(1);
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
     * {@code forward_features} and {@code forward_cached}, when the export has them (manifest
     * format 2): a whole step in one TorchScript call instead of one call per stage.
     */
    @Override
    public Optional<FusedSteps<NDTensor>> fusedSteps() {
        if (!fused) {
            return Optional.empty();
        }
        return Optional.of(new FusedSteps<>() {
            @Override
            public Full<NDTensor> full(NDTensor x, float[] timesteps, Conditioning conditioning) {
                NDArray[] out = callOnInputs("forward_features", x, timesteps, conditioning);
                fullStepCalls++;
                return new Full<>(new NDTensor(out[0]), new NDTensor(out[1]));
            }

            @Override
            public NDTensor cached(NDTensor x, float[] timesteps, Conditioning conditioning, List<NDTensor> slots,
                    double[] coefficients) {
                if (slots.isEmpty() || slots.size() != coefficients.length) {
                    throw new IllegalArgumentException(slots.size() + " feature slots for " + coefficients.length
                            + " coefficients (one each, at least one)");
                }
                long[] want = {config.features(), x.shape()[0], config.tokens(), config.hiddenSize()};
                PtNDArray[] stacks = new PtNDArray[slots.size()];
                for (int j = 0; j < stacks.length; j++) {
                    NDTensor f = NDArrayOps.check(slots.get(j));
                    if (!Arrays.equals(f.shape(), want)) {
                        throw new IllegalArgumentException("stacked features " + Arrays.toString(f.shape()) + " are not "
                                + Arrays.toString(want));
                    }
                    stacks[j] = (PtNDArray) f.array();
                }
                NDArray out = callOnInputs("forward_cached", x, timesteps, conditioning, stacks, coefficients.clone())[0];
                cachedStepCalls++;
                return new NDTensor(out);
            }
        });
    }

    /**
     * The exported whole-model {@code forward(x, t, y)} in one TorchScript call: the reference
     * the stage-by-stage path is compared with. The result is in the current scope.
     */
    public NDTensor wholeModel(NDTensor x, float[] timesteps, Conditioning conditioning) {
        NDArray out = callOnInputs("forward", x, timesteps, conditioning)[0];
        forwardCalls++;
        return new NDTensor(out);
    }

    /**
     * Checks the model inputs {@code (x, t, y)} and calls {@code method(x, t, y)} with the
     * timesteps and labels as temporary arrays; the outputs are in the current scope.
     */
    private NDArray[] callOnInputs(String method, NDTensor x, float[] timesteps, Conditioning conditioning, Object... more) {
        int n = conditioning.size();
        checkLatent(x, n);
        if (timesteps.length != n) {
            throw new IllegalArgumentException(timesteps.length + " timesteps for " + n + " conditioning rows");
        }
        config.conditioning().check(conditioning, n, true);
        NDManager m = ops.currentManager();
        try (NDArray t = m.create(timesteps); NDArray y = m.create(toLongs(((ClassLabels) conditioning).labels()))) {
            Object[] args = new Object[3 + more.length];
            args[0] = x.array();
            args[1] = t;
            args[2] = y;
            System.arraycopy(more, 0, args, 3, more.length);
            return module.call(method, m, args);
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

    /** The latent must be float32 {@code [n, C, H, W]}. */
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
}
