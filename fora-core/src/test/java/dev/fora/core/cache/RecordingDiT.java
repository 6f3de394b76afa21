package dev.fora.core.cache;

import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.DiTModel;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.Modulation;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import java.util.ArrayList;
import java.util.List;

/** A model that forwards to another and records every branch call (block, branch, batch rows) and measurement call. */
class RecordingDiT implements DiTModel<ArrayTensor> {

    /** One branch call. */
    record Call(int block, int branch, int rows) {
    }

    final DiTModel<ArrayTensor> inner;
    final List<Call> branchCalls = new ArrayList<>();
    final List<Integer> modulatedInputCalls = new ArrayList<>();

    RecordingDiT(DiTModel<ArrayTensor> inner) {
        this.inner = inner;
    }

    /** Rows computed by branch calls so far. */
    int rows() {
        return branchCalls.stream().mapToInt(Call::rows).sum();
    }

    @Override
    public DiTConfig config() {
        return inner.config();
    }

    @Override
    public ArrayOps ops() {
        return (ArrayOps) inner.ops();
    }

    @Override
    public Embedding<ArrayTensor> embed(ArrayTensor x, float[] timesteps, Conditioning conditioning) {
        return inner.embed(x, timesteps, conditioning);
    }

    @Override
    public List<Modulation<ArrayTensor>> modulations(Embedding<ArrayTensor> embedding) {
        return inner.modulations(embedding);
    }

    @Override
    public ArrayTensor branch(int block, int branch, ArrayTensor x, Modulation<ArrayTensor> modulation,
            Embedding<ArrayTensor> embedding) {
        branchCalls.add(new Call(block, branch, (int) x.shape()[0]));
        return inner.branch(block, branch, x, modulation, embedding);
    }

    @Override
    public ArrayTensor finalLayer(ArrayTensor x, Embedding<ArrayTensor> embedding) {
        return inner.finalLayer(x, embedding);
    }

    @Override
    public Conditioning unconditional() {
        return inner.unconditional();
    }

    @Override
    public ArrayTensor modulatedInput(int block, ArrayTensor x, Modulation<ArrayTensor> modulation) {
        modulatedInputCalls.add(block);
        return inner.modulatedInput(block, x, modulation);
    }
}
