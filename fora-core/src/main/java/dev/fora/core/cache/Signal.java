package dev.fora.core.cache;

/**
 * Measurements an adaptive policy can ask for during a step. The core measures a signal
 * only if the policy lists it in {@link CachePolicy#signals()}; each is a relative L1
 * change {@code mean|now - before| / mean|before|} against the previous step of the same
 * generation, read through {@link StepContext#signal(Signal)}.
 */
public enum Signal {

    /**
     * Change of block 0's modulated input {@code modulate(LN(x), shift1, scale1)} since the
     * previous step (TeaCache). Measured before block 0's attention, so it is available for
     * every block and branch, including block 0. Requires
     * {@link dev.fora.core.model.DiTModel#modulatedInput}.
     */
    MODULATED_INPUT_CHANGE(0),

    /**
     * Change of block 0's residual (its output minus its input) since the previous step
     * (First-Block-Cache). Measured after block 0, so it is available from block 1 on.
     */
    FIRST_BLOCK_RESIDUAL_CHANGE(1);

    private final int firstBlock;

    Signal(int firstBlock) {
        this.firstBlock = firstBlock;
    }

    /** The first block whose decisions can read this signal. */
    public int firstBlock() {
        return firstBlock;
    }
}
