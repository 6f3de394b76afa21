package dev.fora.core.model;

import java.util.Objects;

/**
 * The shape of a Diffusion Transformer: what the core needs to reason about tokens, cache
 * memory, FLOPs and inputs.
 *
 * @param inputSize latent height and width {@code H = W}
 * @param inChannels latent channels {@code C}
 * @param patchSize patch size {@code p}
 * @param hiddenSize token width {@code D}
 * @param depth number of blocks
 * @param numHeads attention heads
 * @param mlpRatio hidden width of the MLP over {@code D} (DiT: 4)
 * @param learnSigma whether the model also predicts the variance interpolation value
 *     ({@code 2C} output channels)
 * @param layout what every block is made of
 * @param conditioning what the model is conditioned on
 */
public record DiTConfig(int inputSize, int inChannels, int patchSize, int hiddenSize, int depth, int numHeads,
        double mlpRatio, boolean learnSigma, BlockLayout layout, ConditioningSpec conditioning) {

    /** Validates the sizes. */
    public DiTConfig {
        require(inputSize > 0, "inputSize must be > 0");
        require(inChannels > 0, "inChannels must be > 0");
        require(patchSize > 0 && inputSize % patchSize == 0, "patchSize must divide inputSize");
        require(depth > 0, "depth must be > 0");
        require(numHeads > 0 && hiddenSize > 0 && hiddenSize % numHeads == 0, "numHeads must divide hiddenSize");
        require(mlpRatio > 0 && Double.isFinite(mlpRatio), "mlpRatio must be > 0");
        Objects.requireNonNull(layout, "layout");
        Objects.requireNonNull(conditioning, "conditioning");
    }

    /** A class-conditional DiT with DiT's block layout and MLP ratio 4. */
    public static DiTConfig classConditional(int inputSize, int inChannels, int patchSize, int hiddenSize, int depth,
            int numHeads, int numClasses, boolean learnSigma) {
        return new DiTConfig(inputSize, inChannels, patchSize, hiddenSize, depth, numHeads, 4.0, learnSigma, BlockLayout.DIT,
                new ConditioningSpec.Classes(numClasses));
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException("invalid DiTConfig: " + message);
        }
    }

    /** Output channels of the final layer: {@code 2C} with learned sigma, else {@code C}. */
    public int outChannels() {
        return learnSigma ? 2 * inChannels : inChannels;
    }

    /** Tokens per sample {@code T = (H/p)^2}. */
    public int tokens() {
        int side = inputSize / patchSize;
        return side * side;
    }

    /** Branches per block. */
    public int branches() {
        return layout.size();
    }

    /** Cacheable features: {@code depth x branches}. */
    public int features() {
        return depth * layout.size();
    }

    /** The index of (block, branch) among {@link #features()}, in forward order. */
    public int feature(int block, int branch) {
        if (block < 0 || block >= depth) {
            throw new IndexOutOfBoundsException("block " + block + " outside 0.." + (depth - 1));
        }
        if (branch < 0 || branch >= layout.size()) {
            throw new IndexOutOfBoundsException("branch " + branch + " outside 0.." + (layout.size() - 1));
        }
        return block * layout.size() + branch;
    }

    /** The class count of a class-conditional model. */
    public int numClasses() {
        if (conditioning instanceof ConditioningSpec.Classes c) {
            return c.count();
        }
        throw new IllegalStateException("the model is conditioned on " + conditioning + ", not on classes");
    }

    /**
     * FLOPs of one evaluation of {@code branch} for one sample (a multiply-add counts 2);
     * LayerNorm, modulation and softmax are ignored.
     * <ul>
     * <li>self-attention: qkv and output projections {@code 8*T*D^2}, scores and values {@code 4*T^2*D};</li>
     * <li>cross-attention to {@code L} text tokens (already projected to {@code D}): q and output
     *     projections {@code 4*T*D^2}, k and v projections {@code 4*L*D^2}, scores and values {@code 4*T*L*D};</li>
     * <li>MLP: {@code 2 * 2*T*D*(r*D) = 4r*T*D^2} with the MLP ratio {@code r}.</li>
     * </ul>
     */
    public double branchFlopsPerSample(int branch) {
        double t = tokens();
        double d = hiddenSize;
        return switch (layout.branch(branch).kind()) {
            case SELF_ATTENTION -> 8 * t * d * d + 4 * t * t * d;
            case CROSS_ATTENTION -> {
                if (!(conditioning instanceof ConditioningSpec.Text text)) {
                    throw new IllegalStateException("a cross-attention branch needs text conditioning, the model has "
                            + conditioning);
                }
                double l = text.tokens();
                yield 4 * t * d * d + 4 * l * d * d + 4 * t * l * d;
            }
            case MLP -> 4 * mlpRatio * t * d * d;
        };
    }

    /** Bytes of one cached feature for one row: {@code T x D} float32 values. */
    public long featureBytesPerRow() {
        return (long) tokens() * hiddenSize * Float.BYTES;
    }
}
