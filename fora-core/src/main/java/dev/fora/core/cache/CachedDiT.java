package dev.fora.core.cache;

import dev.fora.core.model.DiTModel;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.Modulation;
import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalDouble;
import java.util.function.Supplier;

/**
 * A {@link DiTModel} with a feature cache standing between each branch and its gate.
 *
 * <p>One cached forward pass: embed; all blocks' modulations; then per block, for the
 * attention and then the MLP branch, ask the policy, compute the branch through the model
 * (storing it in the cache), take it from the cache, or forecast it; then the gated
 * residual add with the gate of the current step; finally the final layer. The operations
 * run in the same order as {@link DiTModel#forward}, so a policy that always computes
 * reproduces the plain forward bit for bit.
 *
 * <p>This object holds no per-generation state; {@link #newSession} starts one.
 *
 * @param <T> tensor type
 */
public final class CachedDiT<T extends Tensor> {

    private final DiTModel<T> model;

    /** Wraps a model. */
    public CachedDiT(DiTModel<T> model) {
        this.model = Objects.requireNonNull(model, "model");
    }

    /** The wrapped model. */
    public DiTModel<T> model() {
        return model;
    }

    /** Starts a generation of {@code totalSteps} sampler steps under {@code policy}. */
    public GenerationSession<T> newSession(CachePolicy policy, int totalSteps) {
        return new GenerationSession<>(this, Objects.requireNonNull(policy, "policy"), totalSteps);
    }

    /** A branch output and whether this forward pass owns it (may release it after use). */
    private record BranchOutput<T>(T value, boolean owned) {
    }

    T forward(GenerationSession<T> session, int step, double timestep, T x, float[] timesteps, int[] labels) {
        TensorOps<T> ops = model.ops();
        int depth = model.config().depth();
        Context ctx = new Context(session, step, timestep, depth);
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
            Embedding<T> e = model.embed(x, timesteps, labels);
            List<Modulation<T>> mods = model.modulations(e.conditioning());
            T h = e.tokens();
            for (int b = 0; b < depth; b++) {
                Modulation<T> m = mods.get(b);
                T in = h;
                if (b == 0 && session.measures(Signal.MODULATED_INPUT_CHANGE)) {
                    ctx.measure(Signal.MODULATED_INPUT_CHANGE, model.modulatedInput(0, in, m.shift1(), m.scale1()));
                }
                int block = b;
                BranchOutput<T> a = branch(ctx, block, Branch.ATTENTION,
                        () -> model.attention(block, in, m.shift1(), m.scale1()));
                T h1 = ops.gatedAdd(in, m.gate1(), a.value());
                release(a);
                boolean keepInput = b == 0 && session.measures(Signal.FIRST_BLOCK_RESIDUAL_CHANGE);
                if (!keepInput) {
                    in.close();
                }
                BranchOutput<T> mo = branch(ctx, block, Branch.MLP,
                        () -> model.mlp(block, h1, m.shift2(), m.scale2()));
                h = ops.gatedAdd(h1, m.gate2(), mo.value());
                release(mo);
                h1.close();
                if (keepInput) {
                    ctx.measure(Signal.FIRST_BLOCK_RESIDUAL_CHANGE, ops.sub(h, in));
                    in.close();
                }
            }
            return ops.attach(model.finalLayer(h, e.conditioning()), outer);
        }
    }

    private BranchOutput<T> branch(Context ctx, int block, Branch branch, Supplier<T> compute) {
        ctx.at(block, branch);
        GenerationSession<T> session = ctx.session;
        FeatureCache<T> cache = session.cache();
        Decision decision = session.decider().decide(ctx);
        if (decision == null) {
            throw new IllegalStateException("policy " + session.policy() + " returned no decision at " + ctx.where());
        }
        BranchOutput<T> out;
        switch (decision.kind()) {
            case COMPUTE -> {
                T value = compute.get();
                out = new BranchOutput<>(value, !cache.store(ctx.step, block, branch, value));
            }
            case REUSE -> {
                List<T> history = cache.history(block, branch);
                if (history.isEmpty()) {
                    throw missing(ctx, decision, 1, 0);
                }
                out = new BranchOutput<>(history.get(0), false);
            }
            case FORECAST -> {
                double[] coefficients = decision.coefficients();
                List<T> history = cache.history(block, branch);
                if (history.size() < coefficients.length) {
                    throw missing(ctx, decision, coefficients.length, history.size());
                }
                T value = model.ops().linearCombination(coefficients, history.subList(0, coefficients.length));
                out = new BranchOutput<>(value, true);
            }
            default -> throw new AssertionError(decision.kind());
        }
        session.stats().record(ctx.step, block, branch, decision.kind());
        return out;
    }

    private static void release(BranchOutput<?> output) {
        if (output.owned()) {
            ((Tensor) output.value()).close();
        }
    }

    private MissingFeatureException missing(Context ctx, Decision decision, int needed, int held) {
        int history = ctx.session.cache().historyLength();
        String why = needed > history
                ? "; it needs " + needed + " computed values but the policy's historyLength() is " + history
                : held == 0 ? "; no value of this feature has been computed yet (the first step must compute)"
                : "; only " + held + " of the " + needed + " values it needs have been computed";
        return new MissingFeatureException("policy " + ctx.session.policy() + " decided " + decision + " at "
                + ctx.where() + why);
    }

    /** The mutable implementation behind the read-only {@link StepContext}. */
    private final class Context implements StepContext {
        private final GenerationSession<T> session;
        private final int step;
        private final double timestep;
        private final int depth;
        private final Map<Signal, OptionalDouble> measured = new EnumMap<>(Signal.class);
        private int block;
        private Branch branch;

        Context(GenerationSession<T> session, int step, double timestep, int depth) {
            this.session = session;
            this.step = step;
            this.timestep = timestep;
            this.depth = depth;
        }

        void at(int block, Branch branch) {
            this.block = block;
            this.branch = branch;
        }

        /** Compares {@code now} with the previous step's value and keeps it (the cache takes ownership). */
        void measure(Signal signal, T now) {
            FeatureCache<T> cache = session.cache();
            T before = cache.signalReference(signal);
            measured.put(signal, before == null ? OptionalDouble.empty()
                    : OptionalDouble.of(model.ops().relativeL1(now, before)));
            cache.replaceSignalReference(signal, now);
        }

        String where() {
            return "step " + step + " (loop index " + loopIndex() + ", timestep " + timestep + "), block " + block
                    + ", " + branch;
        }

        @Override
        public int step() {
            return step;
        }

        @Override
        public int totalSteps() {
            return session.totalSteps();
        }

        @Override
        public double timestep() {
            return timestep;
        }

        @Override
        public int block() {
            return block;
        }

        @Override
        public int depth() {
            return depth;
        }

        @Override
        public Branch branch() {
            return branch;
        }

        @Override
        public OptionalDouble signal(Signal signal) {
            if (!session.measures(signal)) {
                throw new IllegalStateException("signal " + signal + " was not declared in the policy's signals(), so it is not measured");
            }
            if (block < signal.firstBlock()) {
                throw new IllegalStateException("signal " + signal + " is measured after block " + (signal.firstBlock() - 1)
                        + "; it is not available when deciding block " + block);
            }
            return measured.get(signal);
        }

        @Override
        public int[] computedSteps() {
            return session.cache().computedSteps(block, branch);
        }
    }
}
