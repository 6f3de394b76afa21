package dev.fora.core.cache;

import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.DiTModel;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.Modulation;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A one-token, width-1 DiT ({@link dev.fora.core.model.BlockLayout#DIT}, 2 classes) whose
 * branch outputs are known functions of the timestep: A = t and M = 2t in every block,
 * gates 1. So the output is {@code x + depth * (A + M)} with A and M as the cache delivered
 * them, and every branch call is recorded ("A0", "M0", ...).
 */
final class ToyDiT implements DiTModel<ArrayTensor> {

    final ArrayOps ops;
    final DiTConfig config;
    final List<String> calls = new ArrayList<>();

    ToyDiT(ArrayOps ops, int depth) {
        this.ops = ops;
        this.config = DiTConfig.classConditional(1, 1, 1, 1, depth, 1, 2, false);
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
        return new Embedding<>(ops.wrap(new int[] {n, 1, 1}, ops.toFloats(x)), ops.wrap(new int[] {n, 1}, timesteps.clone()));
    }

    /** Per block: shift_msa = t, scale 0, gate 1; shift_mlp = 2t, scale 0, gate 1. */
    @Override
    public List<Modulation<ArrayTensor>> modulations(Embedding<ArrayTensor> embedding) {
        ArrayTensor c = embedding.conditioning();
        int n = (int) c.shape()[0];
        float[] ones = new float[n];
        Arrays.fill(ones, 1f);
        long[] s = {n, 1};
        List<Modulation<ArrayTensor>> all = new ArrayList<>();
        for (int b = 0; b < config.depth(); b++) {
            all.add(new Modulation<>(List.of(ops.scale(c, 1), ops.fromFloats(s, new float[n]), ops.fromFloats(s, ones),
                    ops.scale(c, 2), ops.fromFloats(s, new float[n]), ops.fromFloats(s, ones))));
        }
        return all;
    }

    /** Branch 0 (attn) returns its shift (t), branch 1 (mlp) its shift (2t). */
    @Override
    public ArrayTensor branch(int block, int branch, ArrayTensor x, Modulation<ArrayTensor> modulation,
            Embedding<ArrayTensor> embedding) {
        calls.add((branch == 0 ? "A" : "M") + block);
        ArrayTensor shift = modulation.vector(branch == 0 ? 0 : 3);
        return ops.wrap(new int[] {(int) x.shape()[0], 1, 1}, ops.toFloats(shift));
    }

    @Override
    public ArrayTensor finalLayer(ArrayTensor x, Embedding<ArrayTensor> embedding) {
        return ops.wrap(new int[] {(int) x.shape()[0], 1, 1, 1}, ops.toFloats(x));
    }

    /** x + t. */
    @Override
    public ArrayTensor modulatedInput(int block, ArrayTensor x, Modulation<ArrayTensor> modulation) {
        return ops.add(x, ops.wrap(new int[] {(int) x.shape()[0], 1, 1}, ops.toFloats(modulation.vector(0))));
    }
}
