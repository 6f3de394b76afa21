package dev.fora.core.cache;

import java.util.BitSet;
import java.util.Optional;

/** Computes every branch at every step and caches nothing: the uncached baseline ({@code none}). */
public final class NoCache implements CachePolicy {

    /** The only instance. */
    public static final NoCache INSTANCE = new NoCache();

    private NoCache() {
    }

    @Override
    public CacheDecider newDecider(GenerationInfo info) {
        return context -> Decision.COMPUTE;
    }

    @Override
    public Optional<BitSet> fullSteps(GenerationInfo info) {
        BitSet all = new BitSet(info.totalSteps());
        all.set(0, info.totalSteps());
        return Optional.of(all);
    }

    @Override
    public int historyLength() {
        return 0;
    }

    @Override
    public Optional<String> spec() {
        return Optional.of(BuiltInPolicyTypes.NONE.spec());
    }

    @Override
    public String toString() {
        return "none";
    }
}
