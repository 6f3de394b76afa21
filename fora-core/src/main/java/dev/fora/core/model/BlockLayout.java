package dev.fora.core.model;

import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * What every block of a model is made of: its branches in forward order, and the names of
 * the adaLN modulation vectors the blocks compute (each {@code [N, D]}). A branch's gate is
 * an index into the vectors.
 *
 * @param branches the branches, in the order the block runs them
 * @param modulation the names of the modulation vectors, in the order the model returns them
 */
public record BlockLayout(List<BranchSpec> branches, List<String> modulation) {

    /**
     * DiT (Peebles &amp; Xie): self-attention then MLP, each under adaLN-Zero; six vectors
     * {@code shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp}.
     */
    public static final BlockLayout DIT = new BlockLayout(
            List.of(new BranchSpec("attn", BranchSpec.Kind.SELF_ATTENTION, 2), new BranchSpec("mlp", BranchSpec.Kind.MLP, 5)),
            List.of("shift_msa", "scale_msa", "gate_msa", "shift_mlp", "scale_mlp", "gate_mlp"));

    /**
     * PixArt-α: gated self-attention, ungated cross-attention to the text tokens, gated MLP;
     * the same six vectors as DiT (from adaLN-single).
     */
    public static final BlockLayout CROSS_ATTENTION = new BlockLayout(
            List.of(new BranchSpec("attn", BranchSpec.Kind.SELF_ATTENTION, 2),
                    new BranchSpec("cross", BranchSpec.Kind.CROSS_ATTENTION, BranchSpec.UNGATED),
                    new BranchSpec("mlp", BranchSpec.Kind.MLP, 5)),
            DIT.modulation());

    /** Validates names and gate indices. */
    public BlockLayout {
        branches = List.copyOf(Objects.requireNonNull(branches, "branches"));
        modulation = List.copyOf(Objects.requireNonNull(modulation, "modulation"));
        if (branches.isEmpty()) {
            throw new IllegalArgumentException("a block needs at least one branch");
        }
        Set<String> names = new HashSet<>();
        for (BranchSpec b : branches) {
            if (!names.add(b.name())) {
                throw new IllegalArgumentException("two branches are named " + b.name());
            }
            if (b.gated() && b.gate() >= modulation.size()) {
                throw new IllegalArgumentException("branch " + b.name() + " is gated by vector " + b.gate() + " but the block has "
                        + modulation.size() + " modulation vectors");
            }
        }
    }

    /** Number of branches per block. */
    public int size() {
        return branches.size();
    }

    /** Branch {@code index}. */
    public BranchSpec branch(int index) {
        return branches.get(index);
    }

    /**
     * The index of the branch called {@code name}.
     *
     * @throws IllegalArgumentException naming the branches there are
     */
    public int indexOf(String name) {
        for (int i = 0; i < branches.size(); i++) {
            if (branches.get(i).name().equals(name)) {
                return i;
            }
        }
        throw new IllegalArgumentException("no branch named \"" + name + "\"; the blocks have " + branches);
    }
}
