package dev.fora.djl;

import java.util.Arrays;

/**
 * How many times each TorchScript method was called (a snapshot). Used to show that a cache
 * policy really skips work: with FORA every skipped branch is a call that never happens.
 *
 * @param embed calls of {@code embed}
 * @param modulation calls of {@code modulation} (all blocks at once)
 * @param attention calls of {@code attention}, per block
 * @param mlp calls of {@code mlp}, per block
 * @param finalLayer calls of {@code final_layer}
 * @param forward calls of the whole-model {@code forward}
 */
public record TorchScriptCalls(long embed, long modulation, long[] attention, long[] mlp, long finalLayer, long forward) {

    /** Copies the arrays. */
    public TorchScriptCalls {
        attention = attention.clone();
        mlp = mlp.clone();
    }

    @Override
    public long[] attention() {
        return attention.clone();
    }

    @Override
    public long[] mlp() {
        return mlp.clone();
    }

    /** Attention plus MLP calls over all blocks. */
    public long branchCalls() {
        return Arrays.stream(attention).sum() + Arrays.stream(mlp).sum();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TorchScriptCalls c && embed == c.embed && modulation == c.modulation
                && Arrays.equals(attention, c.attention) && Arrays.equals(mlp, c.mlp) && finalLayer == c.finalLayer
                && forward == c.forward;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(new long[] {embed, modulation, finalLayer, forward}) * 31 * 31
                + Arrays.hashCode(attention) * 31 + Arrays.hashCode(mlp);
    }

    @Override
    public String toString() {
        return "TorchScriptCalls[embed=" + embed + ", modulation=" + modulation + ", attention=" + Arrays.toString(attention)
                + ", mlp=" + Arrays.toString(mlp) + ", finalLayer=" + finalLayer + ", forward=" + forward + "]";
    }
}
