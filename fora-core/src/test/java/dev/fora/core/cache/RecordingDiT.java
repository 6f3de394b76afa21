package dev.fora.core.cache;

import dev.fora.core.model.DiTModel;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.ForwardingDiT;
import dev.fora.core.model.Modulation;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import java.util.ArrayList;
import java.util.List;

/** A model that forwards to another and records every branch call (block, branch, batch rows) and measurement call. */
class RecordingDiT extends ForwardingDiT<ArrayTensor> {

    /** One branch call. */
    record Call(int block, int branch, int rows) {
    }

    final List<Call> branchCalls = new ArrayList<>();
    final List<Integer> modulatedInputCalls = new ArrayList<>();

    RecordingDiT(DiTModel<ArrayTensor> inner) {
        super(inner);
    }

    /** Rows computed by branch calls so far. */
    int rows() {
        return branchCalls.stream().mapToInt(Call::rows).sum();
    }

    @Override
    public ArrayOps ops() {
        return (ArrayOps) super.ops();
    }

    @Override
    public ArrayTensor branch(int block, int branch, ArrayTensor x, Modulation<ArrayTensor> modulation,
            Embedding<ArrayTensor> embedding) {
        branchCalls.add(new Call(block, branch, (int) x.shape()[0]));
        return super.branch(block, branch, x, modulation, embedding);
    }

    @Override
    public ArrayTensor modulatedInput(int block, ArrayTensor x, Modulation<ArrayTensor> modulation) {
        modulatedInputCalls.add(block);
        return super.modulatedInput(block, x, modulation);
    }
}
