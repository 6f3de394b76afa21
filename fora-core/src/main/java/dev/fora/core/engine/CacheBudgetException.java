package dev.fora.core.engine;

import java.util.Locale;

/** A generation whose policy may need more cache memory than the budget it was given. */
public final class CacheBudgetException extends IllegalArgumentException {

    private static final long serialVersionUID = 1L;

    private final long needBytes;
    private final long budgetBytes;

    public CacheBudgetException(String policy, long needBytes, long budgetBytes, String why) {
        super(String.format(Locale.ROOT, "policy %s may hold up to %d bytes (%.1f MiB) of cache, over the budget of %d bytes "
                + "(%.1f MiB): %s", policy, needBytes, needBytes / 1048576.0, budgetBytes, budgetBytes / 1048576.0, why));
        this.needBytes = needBytes;
        this.budgetBytes = budgetBytes;
    }

    /** The policy's worst case, in bytes. */
    public long needBytes() {
        return needBytes;
    }

    /** The budget, in bytes. */
    public long budgetBytes() {
        return budgetBytes;
    }
}
