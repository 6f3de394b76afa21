package dev.fora.core.model;

/**
 * The sizes of a DiT (Peebles &amp; Xie): what the core needs to reason about tokens, cache
 * memory and FLOPs.
 *
 * @param inputSize latent height and width {@code H = W}
 * @param inChannels latent channels {@code C}
 * @param patchSize patch size {@code p}
 * @param hiddenSize token width {@code D}
 * @param depth number of transformer blocks
 * @param numHeads attention heads
 * @param numClasses number of real classes; label {@code numClasses} is the null (CFG) class
 * @param learnSigma whether the model also predicts the variance interpolation value
 *     ({@code 2C} output channels)
 */
public record DiTConfig(int inputSize, int inChannels, int patchSize, int hiddenSize, int depth, int numHeads,
        int numClasses, boolean learnSigma) {

    /** Validates the sizes. */
    public DiTConfig {
        require(inputSize > 0, "inputSize must be > 0");
        require(inChannels > 0, "inChannels must be > 0");
        require(patchSize > 0 && inputSize % patchSize == 0, "patchSize must divide inputSize");
        require(depth > 0, "depth must be > 0");
        require(numHeads > 0 && hiddenSize > 0 && hiddenSize % numHeads == 0, "numHeads must divide hiddenSize");
        require(numClasses > 0, "numClasses must be > 0");
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

    /** The label of the null class used for classifier-free guidance. */
    public int nullLabel() {
        return numClasses;
    }

    /**
     * FLOPs of one attention branch for one sample (a multiply-add counts 2):
     * qkv and output projections {@code 2 * 4*T*D^2} plus the score and value products
     * {@code 2 * 2*T^2*D}. LayerNorm, modulation and softmax are ignored.
     */
    public double attentionFlopsPerSample() {
        double t = tokens();
        double d = hiddenSize;
        return 2 * 4 * t * d * d + 2 * 2 * t * t * d;
    }

    /** FLOPs of one MLP branch for one sample: {@code fc1 + fc2 = 2 * 2 * T * D * 4D = 16*T*D^2}. */
    public double mlpFlopsPerSample() {
        double t = tokens();
        double d = hiddenSize;
        return 16 * t * d * d;
    }
}
