package dev.fora.core.cache;

import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.DiTModel;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.Modulation;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import java.util.ArrayList;
import java.util.List;

/**
 * A one-token, width-1 DiT whose branch outputs are known functions of the timestep:
 * A = t and M = 2t in every block, gates 1. So the output is {@code x + depth * (A + M)}
 * with A and M as the cache delivered them, and every branch call is recorded.
 */
final class ToyDiT implements DiTModel<ArrayTensor> {

    final ArrayOps ops;
    final DiTConfig config;
    final List<String> calls = new ArrayList<>();

    ToyDiT(ArrayOps ops, int depth) {
        this.ops = ops;
        this.config = new DiTConfig(1, 1, 1, 1, depth, 1, 2, false);
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
    public Embedding<ArrayTensor> embed(ArrayTensor x, float[] timesteps, int[] labels) {
        int n = labels.length;
        return new Embedding<>(ops.wrap(new int[] {n, 1, 1}, ops.toFloats(x)), ops.wrap(new int[] {n, 1}, timesteps.clone()));
    }

    @Override
    public Modulation<ArrayTensor> modulation(int block, ArrayTensor c) {
        int n = (int) c.shape()[0];
        float[] ones = new float[n];
        java.util.Arrays.fill(ones, 1f);
        long[] s = {n, 1};
        return new Modulation<>(ops.scale(c, 1), ops.fromFloats(s, new float[n]), ops.fromFloats(s, ones),
                ops.scale(c, 2), ops.fromFloats(s, new float[n]), ops.fromFloats(s, ones));
    }

    @Override
    public ArrayTensor attention(int block, ArrayTensor x, ArrayTensor shift1, ArrayTensor scale1) {
        calls.add("A" + block);
        return ops.wrap(new int[] {(int) x.shape()[0], 1, 1}, ops.toFloats(shift1));
    }

    @Override
    public ArrayTensor mlp(int block, ArrayTensor x, ArrayTensor shift2, ArrayTensor scale2) {
        calls.add("M" + block);
        return ops.wrap(new int[] {(int) x.shape()[0], 1, 1}, ops.toFloats(shift2));
    }

    @Override
    public ArrayTensor finalLayer(ArrayTensor x, ArrayTensor c) {
        return ops.wrap(new int[] {(int) x.shape()[0], 1, 1, 1}, ops.toFloats(x));
    }

    @Override
    public ArrayTensor modulatedInput(int block, ArrayTensor x, ArrayTensor shift1, ArrayTensor scale1) {
        return ops.add(x, ops.wrap(new int[] {(int) x.shape()[0], 1, 1}, ops.toFloats(shift1)));
    }
}
