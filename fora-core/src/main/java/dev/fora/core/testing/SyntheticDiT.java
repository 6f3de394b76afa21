package dev.fora.core.testing;

import dev.fora.core.model.BlockLayout;
import dev.fora.core.model.BranchSpec;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.ConditioningSpec;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.TextEmbeddings;
import dev.fora.core.model.DiTModel;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.Modulation;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A small DiT with random weights on {@link ArrayOps}, for testing cache policies without a
 * trained model. It has DiT's structure: patch embedding with a sin-cos position table,
 * timestep MLP plus class table, adaLN modulation per block, LayerNorm (no affine,
 * eps 1e-6) and modulate, multi-head softmax attention, a GELU (tanh) MLP, and an adaLN final
 * layer with unpatchify. Differences, chosen so features drift smoothly over the sampling
 * loop like a trained model's: the timestep embedding uses only low frequencies of
 * {@code t / 1000}, and the variance channels pass through {@code tanh} to stay in
 * {@code [-1, 1]}. Weights are deterministic per seed.
 *
 * <p>With {@link BlockLayout#CROSS_ATTENTION} and {@link ConditioningSpec.Text} conditioning
 * ({@link #CROSS_ATTENTION_SMALL}) it is a PixArt-α-like model instead: the adaLN conditioning
 * is the timestep embedding alone, the text embeddings are projected to {@code D} (the
 * caption projection), and between self-attention and MLP each block runs an ungated,
 * masked multi-head cross-attention from the tokens to the projected text. Its
 * {@link #unconditional()} is a fixed random "empty caption".
 */
public final class SyntheticDiT implements DiTModel<ArrayTensor> {

    /** A default small configuration: 8x8x4 latent, patch 2 (16 tokens), width 32, 6 blocks, 4 heads, 10 classes. */
    public static final DiTConfig SMALL = DiTConfig.classConditional(8, 4, 2, 32, 6, 4, 10, true);

    /**
     * A small cross-attention configuration: like {@link #SMALL} with 4 blocks of self-attention,
     * cross-attention and MLP, conditioned on 6 text tokens of width 16.
     */
    public static final DiTConfig CROSS_ATTENTION_SMALL = new DiTConfig(8, 4, 2, 32, 4, 4, 4.0, true,
            BlockLayout.CROSS_ATTENTION, new ConditioningSpec.Text(6, 16));

    private static final int FREQUENCIES = 16;
    private static final double LN_EPS = 1e-6;

    private final ArrayOps ops;
    private final DiTConfig config;
    private final int d;
    private final int patchDim;
    // weights, row-major [out][in]
    private final float[] patchW;
    private final float[] patchB;
    private final float[] pos;
    private final float[] t1W;
    private final float[] t1B;
    private final float[] t2W;
    private final float[] t2B;
    private final float[] classTable;
    private final float[][] adaW;
    private final float[][] adaB;
    private final float[][] qkvW;
    private final float[][] qkvB;
    private final float[][] projW;
    private final float[][] projB;
    private final float[][] fc1W;
    private final float[][] fc1B;
    private final float[][] fc2W;
    private final float[][] fc2B;
    private final float[] finalAdaW;
    private final float[] finalAdaB;
    private final float[] finalW;
    private final float[] finalB;
    // cross-attention (text-conditioned models only)
    private final float[] captionW;
    private final float[] captionB;
    private final float[][] crossQW;
    private final float[][] crossKvW;
    private final float[][] crossOutW;
    private final TextEmbeddings emptyCaption;

    /** A model of {@link #SMALL} size. */
    public SyntheticDiT(ArrayOps ops, long seed) {
        this(ops, SMALL, seed);
    }

    /** A model of the given size with weights drawn from {@code seed}. */
    public SyntheticDiT(ArrayOps ops, DiTConfig config, long seed) {
        this.ops = ops;
        this.config = config;
        for (int i = 0; i < config.branches(); i++) {
            BranchSpec b = config.layout().branch(i);
            boolean known = b.kind() == BranchSpec.Kind.CROSS_ATTENTION ? !b.gated() : b.gated() && b.gate() >= 2;
            if (!known) {
                throw new IllegalArgumentException("SyntheticDiT runs gated self-attention and MLP branches (shift, scale, gate"
                        + " = the three vectors up to the gate) and ungated cross-attention, not " + b);
            }
        }
        if (config.layout().modulation().size() != 6) {
            throw new IllegalArgumentException("SyntheticDiT computes 6 modulation vectors per block");
        }
        this.d = config.hiddenSize();
        int p = config.patchSize();
        this.patchDim = config.inChannels() * p * p;
        SeededGaussianNoise rnd = new SeededGaussianNoise(seed);
        patchW = weights(rnd, d, patchDim, 1.0);
        patchB = weights(rnd, d, 1, 0.1);
        pos = positionTable(config.tokens(), d);
        t1W = weights(rnd, d, 2 * FREQUENCIES, 1.0);
        t1B = weights(rnd, d, 1, 0.1);
        t2W = weights(rnd, d, d, 1.0);
        t2B = weights(rnd, d, 1, 0.1);
        int classes = config.conditioning() instanceof ConditioningSpec.Classes c ? c.count() : 0;
        classTable = weights(rnd, classes + 1, d, Math.sqrt(d) * 0.5);
        int depth = config.depth();
        adaW = new float[depth][];
        adaB = new float[depth][];
        qkvW = new float[depth][];
        qkvB = new float[depth][];
        projW = new float[depth][];
        projB = new float[depth][];
        fc1W = new float[depth][];
        fc1B = new float[depth][];
        fc2W = new float[depth][];
        fc2B = new float[depth][];
        for (int b = 0; b < depth; b++) {
            adaW[b] = weights(rnd, 6 * d, d, 0.5);
            adaB[b] = weights(rnd, 6 * d, 1, 0.1);
            qkvW[b] = weights(rnd, 3 * d, d, 1.0);
            qkvB[b] = weights(rnd, 3 * d, 1, 0.1);
            projW[b] = weights(rnd, d, d, 1.0);
            projB[b] = weights(rnd, d, 1, 0.1);
            int hiddenWidth = (int) Math.round(config.mlpRatio() * d);
            fc1W[b] = weights(rnd, hiddenWidth, d, 1.0);
            fc1B[b] = weights(rnd, hiddenWidth, 1, 0.1);
            fc2W[b] = weights(rnd, d, hiddenWidth, 1.0);
            fc2B[b] = weights(rnd, d, 1, 0.1);
        }
        finalAdaW = weights(rnd, 2 * d, d, 0.5);
        finalAdaB = weights(rnd, 2 * d, 1, 0.1);
        int outDim = p * p * config.outChannels();
        finalW = weights(rnd, outDim, d, 1.0);
        finalB = weights(rnd, outDim, 1, 0.1);
        if (config.conditioning() instanceof ConditioningSpec.Text text) {
            captionW = weights(rnd, d, text.width(), 1.0);
            captionB = weights(rnd, d, 1, 0.1);
            crossQW = new float[depth][];
            crossKvW = new float[depth][];
            crossOutW = new float[depth][];
            for (int b = 0; b < depth; b++) {
                crossQW[b] = weights(rnd, d, d, 1.0);
                crossKvW[b] = weights(rnd, 2 * d, d, 1.0);
                crossOutW[b] = weights(rnd, d, d, 0.5);
            }
            boolean[] mask = new boolean[text.tokens()];
            mask[0] = true;
            emptyCaption = new TextEmbeddings(text.tokens(), text.width(), rnd.next(new long[] {text.tokens(), text.width()}),
                    mask);
        } else {
            captionW = null;
            captionB = null;
            crossQW = null;
            crossKvW = null;
            crossOutW = null;
            emptyCaption = null;
        }
    }

    @Override
    public DiTConfig config() {
        return config;
    }

    @Override
    public ArrayOps ops() {
        return ops;
    }

    @Override
    public Embedding<ArrayTensor> embed(ArrayTensor x, float[] timesteps, Conditioning conditioning) {
        int n = conditioning.size();
        config.conditioning().check(conditioning, n, true);
        int c = config.inChannels();
        int size = config.inputSize();
        int p = config.patchSize();
        int side = size / p;
        int tokens = config.tokens();
        if (!Arrays.equals(x.dims(), new int[] {n, c, size, size}) || timesteps.length != n) {
            throw new IllegalArgumentException("embed expects x [" + n + ", " + c + ", " + size + ", " + size + "] and "
                    + n + " timesteps; got x " + Arrays.toString(x.dims()) + " and " + timesteps.length + " timesteps");
        }
        float[] xs = ops.read(x);
        float[] patches = new float[n * tokens * patchDim];
        for (int s = 0; s < n; s++) {
            for (int hi = 0; hi < side; hi++) {
                for (int wi = 0; wi < side; wi++) {
                    int base = ((s * tokens) + hi * side + wi) * patchDim;
                    for (int ch = 0; ch < c; ch++) {
                        for (int pi = 0; pi < p; pi++) {
                            for (int qi = 0; qi < p; qi++) {
                                patches[base + (ch * p + pi) * p + qi] =
                                        xs[((s * c + ch) * size + hi * p + pi) * size + wi * p + qi];
                            }
                        }
                    }
                }
            }
        }
        float[] tok = linear(patches, n * tokens, patchDim, patchW, patchB, d);
        for (int r = 0; r < n * tokens; r++) {
            int t = r % tokens;
            for (int j = 0; j < d; j++) {
                tok[r * d + j] += pos[t * d + j];
            }
        }
        float[] freq = new float[n * 2 * FREQUENCIES];
        for (int s = 0; s < n; s++) {
            double u = timesteps[s] / 1000.0;
            for (int k = 0; k < FREQUENCIES; k++) {
                double angle = Math.PI * 0.5 * (k + 1) * u;
                freq[s * 2 * FREQUENCIES + k] = (float) Math.cos(angle);
                freq[s * 2 * FREQUENCIES + FREQUENCIES + k] = (float) Math.sin(angle);
            }
        }
        float[] cond = linear(silu(linear(freq, n, 2 * FREQUENCIES, t1W, t1B, d)), n, d, t2W, t2B, d);
        ArrayTensor tokensT = ops.wrap(new int[] {n, tokens, d}, tok);
        if (conditioning instanceof TextEmbeddings text) {
            int l = text.tokens();
            float[] context = linear(text.values(), n * l, text.width(), captionW, captionB, d);
            boolean[] m = text.mask();
            float[] mask = new float[m.length];
            for (int i = 0; i < m.length; i++) {
                mask[i] = m[i] ? 1f : 0f;
            }
            return new Embedding<>(tokensT, ops.wrap(new int[] {n, d}, cond), ops.wrap(new int[] {n, l, d}, context),
                    ops.wrap(new int[] {n, l}, mask));
        }
        ClassLabels labels = (ClassLabels) conditioning;
        for (int s = 0; s < n; s++) {
            int label = labels.label(s);
            for (int j = 0; j < d; j++) {
                cond[s * d + j] += classTable[label * d + j];
            }
        }
        return new Embedding<>(tokensT, ops.wrap(new int[] {n, d}, cond));
    }

    @Override
    public Conditioning unconditional() {
        return emptyCaption != null ? emptyCaption : DiTModel.super.unconditional();
    }

    @Override
    public List<Modulation<ArrayTensor>> modulations(Embedding<ArrayTensor> embedding) {
        List<Modulation<ArrayTensor>> all = new ArrayList<>(config.depth());
        for (int b = 0; b < config.depth(); b++) {
            all.add(modulation(b, embedding.conditioning()));
        }
        return all;
    }

    private Modulation<ArrayTensor> modulation(int block, ArrayTensor c) {
        int n = c.dims()[0];
        float[] m = linear(silu(ops.read(c)), n, d, adaW[block], adaB[block], 6 * d);
        ArrayTensor[] parts = new ArrayTensor[6];
        for (int k = 0; k < 6; k++) {
            float[] part = new float[n * d];
            for (int s = 0; s < n; s++) {
                System.arraycopy(m, s * 6 * d + k * d, part, s * d, d);
            }
            parts[k] = ops.wrap(new int[] {n, d}, part);
        }
        return new Modulation<>(Arrays.asList(parts));
    }

    @Override
    public ArrayTensor modulatedInput(int block, ArrayTensor x, Modulation<ArrayTensor> m) {
        return ops.wrap(x.dims(), modulatedNorm(x, m.vector(0), m.vector(1)));
    }

    @Override
    public ArrayTensor branch(int block, int branch, ArrayTensor x, Modulation<ArrayTensor> m,
            Embedding<ArrayTensor> embedding) {
        BranchSpec spec = config.layout().branch(branch);
        return switch (spec.kind()) {
            case SELF_ATTENTION -> attention(block, x, m.vector(spec.gate() - 2), m.vector(spec.gate() - 1));
            case MLP -> mlp(block, x, m.vector(spec.gate() - 2), m.vector(spec.gate() - 1));
            case CROSS_ATTENTION -> crossAttention(block, x, embedding.context(), embedding.contextMask());
        };
    }

    private ArrayTensor crossAttention(int block, ArrayTensor x, ArrayTensor context, ArrayTensor contextMask) {
        int[] dims = x.dims();
        int n = dims[0];
        int tokens = dims[1];
        int l = context.dims()[1];
        float[] q = linear(ops.read(x), n * tokens, d, crossQW[block], new float[d], d);
        float[] kv = linear(ops.read(context), n * l, d, crossKvW[block], new float[2 * d], 2 * d);
        float[] mask = ops.read(contextMask);
        int heads = config.numHeads();
        int hd = d / heads;
        double norm = 1.0 / Math.sqrt(hd);
        float[] attended = new float[n * tokens * d];
        double[] scores = new double[l];
        for (int s = 0; s < n; s++) {
            for (int head = 0; head < heads; head++) {
                for (int i = 0; i < tokens; i++) {
                    int qBase = (s * tokens + i) * d + head * hd;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < l; j++) {
                        if (mask[s * l + j] == 0f) {
                            scores[j] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        int kBase = (s * l + j) * 2 * d + head * hd;
                        double dot = 0;
                        for (int e = 0; e < hd; e++) {
                            dot += q[qBase + e] * kv[kBase + e];
                        }
                        scores[j] = dot * norm;
                        max = Math.max(max, scores[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < l; j++) {
                        scores[j] = Math.exp(scores[j] - max);
                        sum += scores[j];
                    }
                    for (int e = 0; e < hd; e++) {
                        double acc = 0;
                        for (int j = 0; j < l; j++) {
                            acc += scores[j] * kv[(s * l + j) * 2 * d + d + head * hd + e];
                        }
                        attended[qBase + e] = (float) (acc / sum);
                    }
                }
            }
        }
        return ops.wrap(dims, linear(attended, n * tokens, d, crossOutW[block], new float[d], d));
    }

    private ArrayTensor attention(int block, ArrayTensor x, ArrayTensor shift1, ArrayTensor scale1) {
        int[] dims = x.dims();
        int n = dims[0];
        int tokens = dims[1];
        float[] h = modulatedNorm(x, shift1, scale1);
        float[] qkv = linear(h, n * tokens, d, qkvW[block], qkvB[block], 3 * d);
        int heads = config.numHeads();
        int hd = d / heads;
        double norm = 1.0 / Math.sqrt(hd);
        float[] attended = new float[n * tokens * d];
        double[] scores = new double[tokens];
        for (int s = 0; s < n; s++) {
            for (int head = 0; head < heads; head++) {
                for (int i = 0; i < tokens; i++) {
                    int qBase = (s * tokens + i) * 3 * d + head * hd;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < tokens; j++) {
                        int kBase = (s * tokens + j) * 3 * d + d + head * hd;
                        double dot = 0;
                        for (int e = 0; e < hd; e++) {
                            dot += qkv[qBase + e] * qkv[kBase + e];
                        }
                        scores[j] = dot * norm;
                        max = Math.max(max, scores[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < tokens; j++) {
                        scores[j] = Math.exp(scores[j] - max);
                        sum += scores[j];
                    }
                    int outBase = (s * tokens + i) * d + head * hd;
                    for (int e = 0; e < hd; e++) {
                        double acc = 0;
                        for (int j = 0; j < tokens; j++) {
                            acc += scores[j] * qkv[(s * tokens + j) * 3 * d + 2 * d + head * hd + e];
                        }
                        attended[outBase + e] = (float) (acc / sum);
                    }
                }
            }
        }
        return ops.wrap(dims, linear(attended, n * tokens, d, projW[block], projB[block], d));
    }

    private ArrayTensor mlp(int block, ArrayTensor x, ArrayTensor shift2, ArrayTensor scale2) {
        int[] dims = x.dims();
        int rows = dims[0] * dims[1];
        int hiddenWidth = (int) Math.round(config.mlpRatio() * d);
        float[] hidden = linear(modulatedNorm(x, shift2, scale2), rows, d, fc1W[block], fc1B[block], hiddenWidth);
        for (int i = 0; i < hidden.length; i++) {
            double v = hidden[i];
            hidden[i] = (float) (0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))));
        }
        return ops.wrap(dims, linear(hidden, rows, hiddenWidth, fc2W[block], fc2B[block], d));
    }

    @Override
    public ArrayTensor finalLayer(ArrayTensor x, Embedding<ArrayTensor> embedding) {
        ArrayTensor c = embedding.conditioning();
        int[] dims = x.dims();
        int n = dims[0];
        int tokens = dims[1];
        float[] ada = linear(silu(ops.read(c)), n, d, finalAdaW, finalAdaB, 2 * d);
        float[] shift = new float[n * d];
        float[] scale = new float[n * d];
        for (int s = 0; s < n; s++) {
            System.arraycopy(ada, s * 2 * d, shift, s * d, d);
            System.arraycopy(ada, s * 2 * d + d, scale, s * d, d);
        }
        float[] h = modulatedNorm(ops.read(x), n, tokens, shift, scale);
        int p = config.patchSize();
        int outC = config.outChannels();
        int outDim = p * p * outC;
        float[] patches = linear(h, n * tokens, d, finalW, finalB, outDim);
        int size = config.inputSize();
        int side = size / p;
        float[] out = new float[n * outC * size * size];
        for (int s = 0; s < n; s++) {
            for (int hi = 0; hi < side; hi++) {
                for (int wi = 0; wi < side; wi++) {
                    int base = ((s * tokens) + hi * side + wi) * outDim;
                    for (int pi = 0; pi < p; pi++) {
                        for (int qi = 0; qi < p; qi++) {
                            for (int ch = 0; ch < outC; ch++) {
                                float v = patches[base + (pi * p + qi) * outC + ch];
                                if (ch >= config.inChannels()) {
                                    v = (float) Math.tanh(v);
                                }
                                out[((s * outC + ch) * size + hi * p + pi) * size + wi * p + qi] = v;
                            }
                        }
                    }
                }
            }
        }
        return ops.wrap(new int[] {n, outC, size, size}, out);
    }

    // ---- plain-array helpers ------------------------------------------------------------

    private float[] modulatedNorm(ArrayTensor x, ArrayTensor shift, ArrayTensor scale) {
        int[] dims = x.dims();
        return modulatedNorm(ops.read(x), dims[0], dims[1], ops.read(shift), ops.read(scale));
    }

    /** {@code LN(x) * (1 + scale) + shift} per token, LN without affine. */
    private float[] modulatedNorm(float[] x, int n, int tokens, float[] shift, float[] scale) {
        float[] out = new float[x.length];
        for (int s = 0; s < n; s++) {
            for (int t = 0; t < tokens; t++) {
                int base = (s * tokens + t) * d;
                double mean = 0;
                for (int j = 0; j < d; j++) {
                    mean += x[base + j];
                }
                mean /= d;
                double var = 0;
                for (int j = 0; j < d; j++) {
                    double dev = x[base + j] - mean;
                    var += dev * dev;
                }
                double inv = 1.0 / Math.sqrt(var / d + LN_EPS);
                for (int j = 0; j < d; j++) {
                    out[base + j] = (float) ((x[base + j] - mean) * inv * (1 + scale[s * d + j]) + shift[s * d + j]);
                }
            }
        }
        return out;
    }

    /** {@code rows x outDim} = {@code in [rows x inDim] * W^T + b}, W row-major {@code [outDim][inDim]}. */
    private static float[] linear(float[] in, int rows, int inDim, float[] w, float[] b, int outDim) {
        float[] out = new float[rows * outDim];
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < outDim; o++) {
                double acc = b[o];
                int wBase = o * inDim;
                int iBase = r * inDim;
                for (int k = 0; k < inDim; k++) {
                    acc += in[iBase + k] * w[wBase + k];
                }
                out[r * outDim + o] = (float) acc;
            }
        }
        return out;
    }

    private static float[] silu(float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = (float) (x[i] / (1 + Math.exp(-x[i])));
        }
        return out;
    }

    /** Gaussian weights with standard deviation {@code gain / sqrt(in)}. */
    private static float[] weights(SeededGaussianNoise rnd, int out, int in, double gain) {
        float[] w = rnd.next(new long[] {out, in});
        double std = gain / Math.sqrt(in);
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (w[i] * std);
        }
        return w;
    }

    /** 1-D sin-cos position table {@code [tokens, d]}. */
    private static float[] positionTable(int tokens, int d) {
        float[] table = new float[tokens * d];
        int half = d / 2;
        for (int t = 0; t < tokens; t++) {
            for (int k = 0; k < half; k++) {
                double omega = Math.pow(10000.0, -(double) k / half);
                table[t * d + k] = (float) Math.sin(t * omega);
                table[t * d + half + k] = (float) Math.cos(t * omega);
            }
        }
        return table;
    }
}
