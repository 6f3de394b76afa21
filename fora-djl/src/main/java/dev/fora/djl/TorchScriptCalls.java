package dev.fora.djl;

import java.util.Arrays;
import java.util.List;

/**
 * How many times each TorchScript method was called (a snapshot), and on how many batch
 * rows. Shows that a cache policy really skips work: with FORA every skipped branch is a call
 * that never happens, and with per-image decisions only the images that compute are in the
 * call's batch.
 *
 * @param embed calls of {@code embed}
 * @param modulation calls of {@code modulation} (all blocks at once)
 * @param branchNames the block layout's branch names, in order
 * @param branchCalls per branch (layout order), per block: calls
 * @param branchRows per branch, per block: batch rows over all calls
 * @param finalLayer calls of {@code final_layer}
 * @param forward calls of the whole-model {@code forward}
 * @param fullSteps calls of the fused full step {@code forward_features}
 * @param cachedSteps calls of the fused cached step {@code forward_cached}
 * @param splitSteps calls of {@code forward_split} (full rows and cached rows in one call), or of
 *     {@code forward_split_tails} (which also carries First-Block-Cache tails)
 * @param maskedSteps calls of {@code forward_masked}: some branches computed, the others cached
 * @param headSteps calls of {@code forward_head}: the embedding and the first blocks
 * @param tailSteps calls of {@code forward_tail}: the remaining blocks and the final layer
 */
public record TorchScriptCalls(long embed, long modulation, List<String> branchNames, long[][] branchCalls,
        long[][] branchRows, long finalLayer, long forward, long fullSteps, long cachedSteps, long splitSteps,
        long maskedSteps, long headSteps, long tailSteps) {

    /** Copies the arrays. */
    public TorchScriptCalls {
        branchNames = List.copyOf(branchNames);
        branchCalls = copy(branchCalls);
        branchRows = copy(branchRows);
    }

    private static long[][] copy(long[][] a) {
        long[][] out = new long[a.length][];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i].clone();
        }
        return out;
    }

    @Override
    public long[][] branchCalls() {
        return copy(branchCalls);
    }

    @Override
    public long[][] branchRows() {
        return copy(branchRows);
    }

    /** Calls of the branch named {@code name}, per block. */
    public long[] calls(String name) {
        return branchCalls[index(name)].clone();
    }

    /** Batch rows the branch named {@code name} ran on, per block, over all its calls. */
    public long[] rows(String name) {
        return branchRows[index(name)].clone();
    }

    private int index(String name) {
        int i = branchNames.indexOf(name);
        if (i < 0) {
            throw new IllegalArgumentException("no branch named " + name + "; the branches are " + branchNames);
        }
        return i;
    }

    /** All branch calls over all blocks. */
    public long totalBranchCalls() {
        return Arrays.stream(branchCalls).flatMapToLong(Arrays::stream).sum();
    }

    /** All batch rows of all branch calls. */
    public long totalBranchRows() {
        return Arrays.stream(branchRows).flatMapToLong(Arrays::stream).sum();
    }

    /** The calls made since {@code earlier} (a snapshot of the same counters). */
    public TorchScriptCalls since(TorchScriptCalls earlier) {
        long[][] calls = copy(branchCalls);
        long[][] rows = copy(branchRows);
        for (int i = 0; i < calls.length; i++) {
            for (int b = 0; b < calls[i].length; b++) {
                calls[i][b] -= earlier.branchCalls[i][b];
                rows[i][b] -= earlier.branchRows[i][b];
            }
        }
        return new TorchScriptCalls(embed - earlier.embed, modulation - earlier.modulation, branchNames, calls, rows,
                finalLayer - earlier.finalLayer, forward - earlier.forward, fullSteps - earlier.fullSteps,
                cachedSteps - earlier.cachedSteps, splitSteps - earlier.splitSteps, maskedSteps - earlier.maskedSteps,
                headSteps - earlier.headSteps, tailSteps - earlier.tailSteps);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TorchScriptCalls c && embed == c.embed && modulation == c.modulation
                && branchNames.equals(c.branchNames) && Arrays.deepEquals(branchCalls, c.branchCalls)
                && Arrays.deepEquals(branchRows, c.branchRows) && finalLayer == c.finalLayer && forward == c.forward
                && fullSteps == c.fullSteps && cachedSteps == c.cachedSteps && splitSteps == c.splitSteps
                && maskedSteps == c.maskedSteps && headSteps == c.headSteps && tailSteps == c.tailSteps;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(new long[] {embed, modulation, finalLayer, forward, fullSteps, cachedSteps, splitSteps,
            maskedSteps, headSteps, tailSteps}) * 31 * 31
                + Arrays.deepHashCode(branchCalls) * 31 + Arrays.deepHashCode(branchRows);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("TorchScriptCalls[embed=" + embed + ", modulation=" + modulation);
        for (int i = 0; i < branchNames.size(); i++) {
            sb.append(", ").append(branchNames.get(i)).append('=').append(Arrays.toString(branchCalls[i]))
                    .append(" (rows ").append(Arrays.toString(branchRows[i])).append(')');
        }
        return sb.append(", finalLayer=").append(finalLayer).append(", forward=").append(forward).append(", fullSteps=")
                .append(fullSteps).append(", cachedSteps=").append(cachedSteps).append(", splitSteps=").append(splitSteps)
                .append(", maskedSteps=").append(maskedSteps).append(", headSteps=").append(headSteps).append(", tailSteps=")
                .append(tailSteps).append(']').toString();
    }
}
