package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.fora.core.model.BlockLayout;
import dev.fora.core.model.BranchSpec;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.Modulation;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * What {@link TorchScriptDiT} and {@link TorchScriptPixArt} share: the loaded module, the ops
 * of one generation at a time, the call counters, the one-call modulation of every block, the
 * final layer, block 0's modulated input, and the shape checks of their arguments.
 */
abstract sealed class TorchScriptStages implements TorchScriptModel permits TorchScriptDiT, TorchScriptPixArt {

    final TorchScriptModule module;
    final DiTConfig config;
    final NDArrayOps ops;
    long embedCalls;
    long forwardCalls;
    private long modulationCalls;
    private long finalCalls;
    private final long[][] branchCalls;
    private final long[][] branchRows;
    /** Per branch, the indices of the shift and scale vectors that modulate its input; null if none do. */
    private final int[][] shiftScale;

    TorchScriptStages(TorchScriptModule module, DiTConfig config, NDManager parent) {
        this.module = module;
        this.config = config;
        this.ops = new NDArrayOps(parent);
        this.branchCalls = new long[config.branches()][config.depth()];
        this.branchRows = new long[config.branches()][config.depth()];
        this.shiftScale = shiftScale(config.layout());
    }

    /**
     * The shift and scale of each gated branch, by the layout's vector names: the branch gated by
     * {@code gate_<s>} has its input modulated by {@code shift_<s>} and {@code scale_<s>} (DiT's and
     * PixArt-α's {@code _msa} and {@code _mlp}). An ungated branch takes none.
     */
    private static int[][] shiftScale(BlockLayout layout) {
        List<String> names = layout.modulation();
        int[][] out = new int[layout.size()][];
        for (int i = 0; i < layout.size(); i++) {
            BranchSpec b = layout.branch(i);
            if (!b.gated()) {
                continue;
            }
            String gate = names.get(b.gate());
            if (!gate.startsWith("gate_")) {
                throw new IllegalArgumentException("branch " + b.name() + " is gated by " + gate + ", not by a gate_<s> vector");
            }
            String suffix = gate.substring("gate_".length());
            int shift = names.indexOf("shift_" + suffix);
            int scale = names.indexOf("scale_" + suffix);
            if (shift < 0 || scale < 0) {
                throw new IllegalArgumentException("branch " + b.name() + " is gated by " + gate + " but the layout has no "
                        + "shift_" + suffix + " and scale_" + suffix + " among " + names);
            }
            out[i] = new int[] {shift, scale};
        }
        return out;
    }

    /** The vector that shifts branch {@code branch}'s modulated input. */
    final NDArray shift(int branch, Modulation<NDTensor> modulation) {
        return modulation.vector(modulated(branch)[0]).array();
    }

    /** The vector that scales branch {@code branch}'s modulated input. */
    final NDArray scale(int branch, Modulation<NDTensor> modulation) {
        return modulation.vector(modulated(branch)[1]).array();
    }

    private int[] modulated(int branch) {
        int[] ss = shiftScale[branch];
        if (ss == null) {
            throw new IllegalArgumentException("branch " + config.layout().branch(branch).name() + " has no modulated input");
        }
        return ss;
    }

    @Override
    public final DiTConfig config() {
        return config;
    }

    @Override
    public final NDArrayOps ops() {
        return ops;
    }

    /** The calls so far, with the fused full, cached, split, masked, head and tail steps (none for a model without them). */
    final TorchScriptCalls calls(long fullSteps, long cachedSteps, long splitSteps, long maskedSteps, long headSteps,
            long tailSteps) {
        return new TorchScriptCalls(embedCalls, modulationCalls, config.layout().branches().stream().map(BranchSpec::name).toList(),
                branchCalls, branchRows, finalCalls, forwardCalls, fullSteps, cachedSteps, splitSteps, maskedSteps,
                headSteps, tailSteps);
    }

    /** Counts one call of a block's branch on {@code rows} rows. */
    final void countBranch(int branch, int block, long rows) {
        branchCalls[branch][block]++;
        branchRows[branch][block] += rows;
    }

    /** Every block's modulation vectors from one call ({@code [depth, vectors, N, D]}), sliced per block. */
    @Override
    public final List<Modulation<NDTensor>> modulations(Embedding<NDTensor> embedding) {
        NDTensor c = embedding.conditioning();
        checkVector(c);
        NDArray all = module.call("modulation", ops.currentManager(), c.array())[0];
        modulationCalls++;
        // [depth, vectors, N, D] -> depth*vectors arrays [N, D] in two native calls (a reshape and a split).
        int vectors = config.layout().modulation().size();
        long n = all.getShape().get(2);
        NDList parts;
        try (NDArray flat = all.reshape(config.depth() * (long) vectors * n, config.hiddenSize())) {
            parts = flat.split(config.depth() * (long) vectors, 0);
        } finally {
            all.close(); // the parts keep their storage alive in libtorch
        }
        List<Modulation<NDTensor>> mods = new ArrayList<>(config.depth());
        for (int b = 0; b < config.depth(); b++) {
            List<NDTensor> v = new ArrayList<>(vectors);
            for (int k = 0; k < vectors; k++) {
                v.add(new NDTensor(parts.get(b * vectors + k)));
            }
            mods.add(new Modulation<>(v));
        }
        return mods;
    }

    @Override
    public final NDTensor finalLayer(NDTensor x, Embedding<NDTensor> embedding) {
        NDTensor c = embedding.conditioning();
        checkTokens(x);
        checkVector(c);
        NDArray out = module.call("final_layer", ops.currentManager(), x.array(), c.array())[0];
        finalCalls++;
        return new NDTensor(out);
    }

    /**
     * {@code modulate(LN(x), shift, scale)} of the block's first branch with NDArray operations (LayerNorm without affine,
     * eps 1e-6; PixArt's {@code t2i_modulate} is the same arithmetic), for policies that measure
     * the change of block 0's modulated input.
     */
    @Override
    public final NDTensor modulatedInput(int block, NDTensor x, Modulation<NDTensor> modulation) {
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
            NDArray scale = keep(temps, keep(temps, scale(0, modulation).add(1f)).expandDims(1));
            NDArray shift = keep(temps, shift(0, modulation).expandDims(1));
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

    /** The latent must be float32 {@code [n, C, H, W]}. */
    @Override
    public final void checkLatent(NDTensor x, int n) {
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

    final void checkTokens(NDTensor x) {
        long[] s = NDArrayOps.check(x).shape();
        if (s.length != 3 || s[1] != config.tokens() || s[2] != config.hiddenSize()) {
            throw new IllegalArgumentException("tokens shape " + Arrays.toString(s) + " is not [N, " + config.tokens() + ", "
                    + config.hiddenSize() + "]");
        }
    }

    /** The conditioning vector (DiT's {@code c}, PixArt's timestep embedding) must be {@code [N, D]}. */
    final void checkVector(NDTensor c) {
        long[] s = NDArrayOps.check(c).shape();
        if (s.length != 2 || s[1] != config.hiddenSize()) {
            throw new IllegalArgumentException("conditioning vector shape " + Arrays.toString(s) + " is not [N, "
                    + config.hiddenSize() + "]");
        }
    }

    final void checkBlock(int block) {
        if (block < 0 || block >= config.depth()) {
            throw new IndexOutOfBoundsException("block " + block + " outside 0.." + (config.depth() - 1));
        }
    }

    /** Releases every array this instance created. Idempotent. */
    @Override
    public final void close() {
        ops.close();
    }
}
