package dev.fora.core.cache;

/**
 * The per-generation half of a {@link CachePolicy}: answers one (step, block, branch) at a
 * time. It may keep state across calls (an accumulated change, a counter); it is used by one
 * generation on one thread.
 */
@FunctionalInterface
public interface CacheDecider {

    /** Decides what to do with the branch described by {@code context}. */
    Decision decide(StepContext context);
}
