package dev.fora.core.engine;

import dev.fora.core.cache.BlockRange;
import dev.fora.core.cache.Decision;
import dev.fora.core.engine.MissingFeatureException;
import dev.fora.core.model.DiTConfig;

/** Asks a decider about one feature and checks that the cache can carry out the answer. */
final class Asking {

    private Asking() {
    }

    /**
     * The decider's answer, checked; if the decider throws or its answer cannot be carried out,
     * the failure is kept in its state and its rows compute (which any cache can carry out), so
     * the other deciders of the pass go on.
     */
    static Decision ask(DeciderState<?> s, int block, int branch) {
        if (s.failure != null) {
            return Decision.COMPUTE;
        }
        try {
            return checked(s, block, branch);
        } catch (RuntimeException e) {
            s.failure = e;
            return Decision.COMPUTE;
        }
    }

    /** Runs a decider hook; a failure is kept as in {@link #ask}. */
    static void tell(DeciderState<?> s, Runnable hook) {
        if (s.failure != null) {
            return;
        }
        try {
            hook.run();
        } catch (RuntimeException e) {
            s.failure = e;
        }
    }

    /** The first failure among {@code states}, if any. */
    static RuntimeException failure(Iterable<? extends DeciderState<?>> states) {
        for (DeciderState<?> s : states) {
            if (s.failure != null) {
                return s.failure;
            }
        }
        return null;
    }

    private static Decision checked(DeciderState<?> s, int block, int branch) {
        DeciderContext context = new DeciderContext(s, s.step, block, branch);
        Decision d = s.decider.decide(context);
        if (d == null) {
            throw new IllegalStateException("policy " + s.declarations.describe() + " returned no decision at "
                    + context.where());
        }
        if (d.kind() == Decision.Kind.REUSE_RESIDUAL) {
            checkResidualReuse(d, context);
            return d;
        }
        int needed = d.kind() == Decision.Kind.COMPUTE ? 0 : d.terms();
        int held = s.count(s.declarations.info.config().feature(block, branch));
        if (needed > held) {
            int history = s.historyLength();
            String why = needed > history
                    ? "; it needs " + needed + " computed values but the policy's historyLength() is " + history
                    : held == 0 ? "; no value of this feature has been computed yet for this image (its first step must compute)"
                    : "; only " + held + " of the " + needed + " values it needs have been computed";
            throw new MissingFeatureException("policy " + s.declarations.describe() + " decided " + d + " at "
                    + context.where() + why);
        }
        return d;
    }

    private static void checkResidualReuse(Decision d, DeciderContext context) {
        DeciderState<?> s = context.state();
        DiTConfig config = s.declarations.info.config();
        String at = "policy " + s.declarations.describe() + " decided " + d + " at " + context.where();
        if (context.branchIndex() != 0) {
            throw new IllegalStateException(at + "; a block range can only be skipped at the first branch of a block");
        }
        if (d.toBlock() <= context.block() || d.toBlock() > config.depth()) {
            throw new IllegalStateException(at + "; the range must end after block " + context.block()
                    + " and at most at the depth " + config.depth());
        }
        BlockRange range = new BlockRange(context.block(), d.toBlock());
        if (!s.declarations.keeps(range)) {
            throw new IllegalStateException(at + " but did not declare " + range + " in blockRanges(); declared: "
                    + s.declarations.ranges);
        }
        if (s.residualComputedAt(range).isEmpty()) {
            throw new MissingFeatureException(at + "; no residual of " + range + " has been computed yet for this image (it"
                    + " must run every branch of the range once first)");
        }
    }
}
