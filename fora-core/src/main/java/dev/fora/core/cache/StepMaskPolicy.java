package dev.fora.core.cache;

import java.util.BitSet;
import java.util.Optional;

/**
 * An explicit per-step compute mask ({@code mask:1101...}): character {@code k} is {@code 1}
 * if sampler step {@code k} (0 = first, noisiest) computes every branch and {@code 0} if it
 * reuses every branch. The mask length must equal the number of steps of the generation, and
 * the first step must compute.
 */
public final class StepMaskPolicy implements CachePolicy, CacheDecider {

    private final boolean[] compute;

    /** @param compute {@code compute[k]} is whether step {@code k} computes */
    public StepMaskPolicy(boolean[] compute) {
        if (compute.length == 0) {
            throw new IllegalArgumentException("a step mask needs at least one step");
        }
        if (!compute[0]) {
            throw new IllegalArgumentException("the mask's first step must be 1: nothing is cached before it");
        }
        this.compute = compute.clone();
    }

    /**
     * Parses a string of {@code 0} and {@code 1} characters.
     *
     * @throws IllegalArgumentException on any other character or an empty string
     */
    public static StepMaskPolicy of(String bits) {
        boolean[] mask = new boolean[bits.length()];
        for (int k = 0; k < bits.length(); k++) {
            char c = bits.charAt(k);
            if (c != '0' && c != '1') {
                throw new IllegalArgumentException("mask character " + k + " is '" + c + "'; only 0 and 1 are allowed");
            }
            mask[k] = c == '1';
        }
        return new StepMaskPolicy(mask);
    }

    /** Number of steps the mask covers. */
    public int length() {
        return compute.length;
    }

    @Override
    public CacheDecider newDecider(GenerationInfo info) {
        if (info.totalSteps() != compute.length) {
            throw new IllegalArgumentException("step mask has " + compute.length + " entries but the generation has "
                    + info.totalSteps() + " steps; the mask needs exactly one 0/1 per step");
        }
        return this;
    }

    @Override
    public Optional<BitSet> fullSteps(GenerationInfo info) {
        BitSet full = new BitSet(compute.length);
        for (int s = 0; s < compute.length; s++) {
            full.set(s, compute[s]);
        }
        return Optional.of(full);
    }

    @Override
    public Decision decide(StepContext context) {
        return compute[context.step().step()] ? Decision.COMPUTE : Decision.REUSE;
    }

    @Override
    public Optional<String> spec() {
        StringBuilder bits = new StringBuilder();
        for (boolean b : compute) {
            bits.append(b ? '1' : '0');
        }
        return Optional.of(BuiltInPolicyTypes.MASK.spec(bits));
    }

    @Override
    public String toString() {
        return spec().orElseThrow();
    }
}
