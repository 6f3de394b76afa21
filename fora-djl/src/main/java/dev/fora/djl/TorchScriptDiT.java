package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
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
public final class TorchScriptDiT extends TorchScriptStages {

    static final List<String> METHODS = List.of("forward", "embed", "modulation", "attention", "mlp", "final_layer");
    /** The fused step methods (manifest format 3). */
    static final List<String> FUSED_METHODS = List.of("forward_features", "forward_cached");

    private long fullStepCalls;
    private long cachedStepCalls;
    private long splitStepCalls;
    private long maskedStepCalls;
    private long headStepCalls;
    private long tailStepCalls;
    private final boolean fused;

    TorchScriptDiT(TorchScriptModule module, DiTConfig config, NDManager parent, boolean fused) {
        super(module, config, parent);
        if (!config.layout().equals(BlockLayout.DIT)) {
            throw new IllegalArgumentException("the TorchScript DiT runs DiT's block layout, not " + config.layout());
        }
        this.fused = fused;
    }

    /** The TorchScript calls this instance has made so far. */
    @Override
    public TorchScriptCalls calls() {
        return calls(fullStepCalls, cachedStepCalls, splitStepCalls, maskedStepCalls, headStepCalls, tailStepCalls);
    }

    @Override
    public Embedding<NDTensor> embed(NDTensor x, float[] timesteps, Conditioning conditioning) {
        NDArray[] out = callOnInputs("embed", x, timesteps, conditioning);
        embedCalls++;
        return new Embedding<>(new NDTensor(out[0]), new NDTensor(out[1]));
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
        NDArray out = module.call(method, ops.currentManager(), (long) block, x.array(), shift(branch, modulation),
                scale(branch, modulation))[0];
        countBranch(branch, block, x.shape()[0]);
        return new NDTensor(out);
    }

    /**
     * {@code forward_features} and {@code forward_cached}, when the export has them in the form
     * this library calls ({@link ModelFamily#hasFusedSteps(int)}: manifest format 3): a whole step
     * in one TorchScript call instead of one call per stage.
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

            /** Exports since {@code forward_features_into} was added write into the stack given; others make a new one. */
            @Override
            public Full<NDTensor> full(NDTensor x, float[] timesteps, Conditioning conditioning, NDTensor into) {
                if (!module.methods().contains("forward_features_into")
                        || !Arrays.equals(NDArrayOps.check(into).shape(), stackShape(x.shape()[0]))) {
                    into.close();
                    return full(x, timesteps, conditioning);
                }
                NDArray out = callOnInputs("forward_features_into", x, timesteps, conditioning, into.array())[0];
                fullStepCalls++;
                return new Full<>(new NDTensor(out), into);
            }

            @Override
            public NDTensor uncached(NDTensor x, float[] timesteps, Conditioning conditioning) {
                return wholeModel(x, timesteps, conditioning);
            }

            @Override
            public NDTensor cached(NDTensor x, float[] timesteps, Conditioning conditioning, List<NDTensor> slots,
                    double[] coefficients) {
                PtNDArray[] stacks = stacks(slots, coefficients, x.shape()[0]);
                NDArray out = callOnInputs("forward_cached", x, timesteps, conditioning, stacks, coefficients)[0];
                cachedStepCalls++;
                return new NDTensor(out);
            }

            /** Exports since {@code forward_split} was added have it; older ones keep a call per kind. */
            @Override
            public boolean splits() {
                return module.methods().contains("forward_split");
            }

            @Override
            public Full<NDTensor> split(NDTensor x, float[] timesteps, Conditioning conditioning, int fullRows,
                    List<NDTensor> slots, double[] coefficients) {
                long n = x.shape()[0];
                if (fullRows < 0 || fullRows > n) {
                    throw new IllegalArgumentException(fullRows + " full rows of " + n);
                }
                PtNDArray[] stacks = stacks(slots, coefficients, n - fullRows);
                NDArray[] out = callOnInputs("forward_split", x, timesteps, conditioning, (long) fullRows, stacks,
                        coefficients);
                splitStepCalls++;
                return new Full<>(new NDTensor(out[0]), new NDTensor(out[1]));
            }

            /** Exports since {@code forward_masked} was added have it; older ones run mixed steps stage by stage. */
            @Override
            public boolean masks() {
                return module.methods().contains("forward_masked");
            }

            @Override
            public Full<NDTensor> masked(NDTensor x, float[] timesteps, Conditioning conditioning, int[] terms,
                    List<NDTensor> values, double[] coefficients) {
                if (terms.length != config.features() || values.size() != coefficients.length
                        || Arrays.stream(terms).sum() != values.size() || Arrays.stream(terms).anyMatch(n -> n < 0)) {
                    throw new IllegalArgumentException("a masked step takes a term count >= 0 for each of the "
                            + config.features() + " features and one coefficient per value; got terms "
                            + Arrays.toString(terms) + " for " + values.size() + " values and " + coefficients.length
                            + " coefficients");
                }
                PtNDArray[] arrays = arraysOfShape(values, new long[] {x.shape()[0], config.tokens(), config.hiddenSize()},
                        "cached values");
                long[] counts = Arrays.stream(terms).asLongStream().toArray();
                NDArray[] out = callOnInputs("forward_masked", x, timesteps, conditioning, counts, arrays, coefficients);
                maskedStepCalls++;
                return new Full<>(new NDTensor(out[0]), new NDTensor(out[1]));
            }

            /** Exports since {@code forward_split_tails} was added have it; older ones make the tails' own calls. */
            @Override
            public boolean carriesTails() {
                return module.methods().contains("forward_split_tails");
            }

            @Override
            public SplitWithTails<NDTensor> splitWithTails(NDTensor x, float[] timesteps, Conditioning conditioning,
                    int fullRows, List<NDTensor> slots, double[] coefficients, Tails<NDTensor> tails) {
                long n = x.shape()[0];
                if (fullRows < 0 || fullRows > n) {
                    throw new IllegalArgumentException(fullRows + " full rows of " + n);
                }
                checkTokens(tails.tokens());
                checkVector(tails.conditioning());
                long m = tails.tokens().shape()[0];
                if (tails.conditioning().shape()[0] != m || tails.computing() < 0 || tails.computing() > m) {
                    throw new IllegalArgumentException("tails of " + m + " token rows, " + tails.conditioning().shape()[0]
                            + " conditioning rows and " + tails.computing() + " computing rows");
                }
                PtNDArray[] stacks = stacks(slots, coefficients, n - fullRows);
                NDArray[] out = callOnInputs("forward_split_tails", x, timesteps, conditioning, (long) fullRows, stacks,
                        coefficients, tails.tokens().array(), tails.conditioning().array(), (long) tails.computing());
                splitStepCalls++;
                return new SplitWithTails<>(new NDTensor(out[0]), new NDTensor(out[1]), new NDTensor(out[2]),
                        new NDTensor(out[3]));
            }

            /** Exports since {@code forward_head} and {@code forward_tail} were added have them; older ones run the stages. */
            @Override
            public boolean spans() {
                return module.methods().contains("forward_head") && module.methods().contains("forward_tail");
            }

            @Override
            public Head<NDTensor> head(NDTensor x, float[] timesteps, Conditioning conditioning, int blocks) {
                checkSpan("blocks", blocks);
                NDArray[] out = callOnInputs("forward_head", x, timesteps, conditioning, (long) blocks);
                headStepCalls++;
                return new Head<>(new NDTensor(out[0]), new NDTensor(out[1]), new NDTensor(out[2]));
            }

            @Override
            public Tail<NDTensor> tail(NDTensor tokens, NDTensor conditioning, int from) {
                checkSpan("from", from);
                checkTokens(tokens);
                checkVector(conditioning);
                if (conditioning.shape()[0] != tokens.shape()[0]) {
                    throw new IllegalArgumentException(conditioning.shape()[0] + " conditioning rows for " + tokens.shape()[0]
                            + " rows of tokens");
                }
                NDArray[] out = module.call("forward_tail", ops.currentManager(), tokens.array(), conditioning.array(),
                        (long) from);
                tailStepCalls++;
                return new Tail<>(new NDTensor(out[0]), new NDTensor(out[1]));
            }
        });
    }

    /** A head's block count or a tail's first block: {@code 0..depth}. */
    private void checkSpan(String what, int block) {
        if (block < 0 || block > config.depth()) {
            throw new IndexOutOfBoundsException(what + " " + block + " outside 0.." + config.depth());
        }
    }

    /** {@code [features, rows, T, D]}: the shape of a stack of every feature of {@code rows} rows. */
    private long[] stackShape(long rows) {
        return new long[] {config.features(), rows, config.tokens(), config.hiddenSize()};
    }

    /** The feature slots as the arrays a fused call takes, each checked to be {@code [features, rows, T, D]}. */
    private PtNDArray[] stacks(List<NDTensor> slots, double[] coefficients, long rows) {
        if (slots.isEmpty() || slots.size() != coefficients.length) {
            throw new IllegalArgumentException(slots.size() + " feature slots for " + coefficients.length
                    + " coefficients (one each, at least one)");
        }
        return arraysOfShape(slots, stackShape(rows), "stacked features");
    }

    /** The tensors as the arrays a call takes, each checked to have shape {@code want} ({@code what} names them). */
    private static PtNDArray[] arraysOfShape(List<NDTensor> tensors, long[] want, String what) {
        PtNDArray[] arrays = new PtNDArray[tensors.size()];
        for (int j = 0; j < arrays.length; j++) {
            NDTensor t = NDArrayOps.check(tensors.get(j));
            if (!Arrays.equals(t.shape(), want)) {
                throw new IllegalArgumentException(what + " " + Arrays.toString(t.shape()) + " are not "
                        + Arrays.toString(want));
            }
            arrays[j] = (PtNDArray) t.array();
        }
        return arrays;
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

    private static long[] toLongs(int[] labels) {
        long[] y = new long[labels.length];
        for (int i = 0; i < y.length; i++) {
            y[i] = labels[i];
        }
        return y;
    }
}
