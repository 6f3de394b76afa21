package dev.fora.core.cache;

import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.DiTModel;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.FusedSteps;
import dev.fora.core.model.Modulation;
import dev.fora.core.sampling.DenoisingModel;
import dev.fora.core.sampling.NonFiniteOutputException;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalDouble;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One generation: a batch of images sampled under one cache policy. It owns everything the
 * cached forward pass needs (the policy's deciders, one per image; the {@link FeatureCache};
 * the declared measurements; the {@link GenerationStats}) and runs that pass itself.
 *
 * <h2>One step</h2>
 * Embed; all blocks' modulations; then per block, per branch of the model's layout, ask
 * every image's decider; run the images that COMPUTE through the model as one sub-batch
 * (all of them: the whole batch), take REUSE rows from the cache and FORECAST rows from a
 * linear combination of cached values, and add the result through the current step's gate;
 * finally the final layer. The stages run in the same order as
 * {@link DiTModel#forward}, so a policy that always computes reproduces it bit for bit, and
 * an image's rows never mix with another image's, so an image's output does not depend on
 * its batch.
 *
 * <h2>Fused steps</h2>
 * When the model has {@link DiTModel#fusedSteps()} and the policy declares no measurements
 * and no block ranges,
 * every decision of a step is made before it runs; a step where every image computes every
 * feature is one fused full call (its features stored stacked), and one where every image
 * reuses, or forecasts with the same coefficients, every feature is one fused cached call.
 * Other steps run the stages.
 *
 * <h2>Rows</h2>
 * A generation of {@code N} images runs {@code N} rows, or {@code 2N} when guided: rows
 * {@code 0..N-1} conditional, rows {@code N..2N-1} unconditional, as DiT's
 * {@code forward_with_cfg} stacks them (and {@link dev.fora.core.sampling.ClassifierFreeGuidance}
 * builds them).
 *
 * <h2>Rules</h2>
 * Steps run exactly once each, in order {@code 0..K-1}; anything else, or use after close,
 * is an {@link IllegalStateException}. The input is checked before a step counts as run: a
 * latent of the wrong shape or batch, or conditioning the model does not take, is an
 * {@link IllegalArgumentException} that leaves the generation at the same step. If a step
 * throws once running, close the generation. Closing releases every cached tensor.
 *
 * <h2>Finite check</h2>
 * Unless turned off ({@link Builder#checkFinite(boolean)}), each step's output is checked with
 * one reduction: NaN or infinity (broken weights, a NaN latent) is a
 * {@link NonFiniteOutputException} naming the step, the image and the half, not an image
 * sampled on to black. The core's sampler loop makes the same check on what it is given
 * ({@link dev.fora.core.sampling.LoopControl}); when it drives this generation, one of the two
 * is enough.
 *
 * <pre>{@code
 * try (Generation<T> g = Generation.builder(model, policy).steps(50).images(4).guided(true).open()) {
 *     T x = sampler.sample(ops, new ClassifierFreeGuidance<>(ops, g, 1.5, model.unconditional()),
 *             shape, ClassLabels.of(labels), noise);
 *     log(g.stats());
 * }
 * }</pre>
 *
 * @param <T> tensor type
 */
public final class Generation<T extends Tensor> implements DenoisingModel<T>, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(Generation.class);

    private final DiTModel<T> model;
    private final TensorOps<T> ops;
    private final DiTConfig config;
    private final CachePolicy policy;
    private final GenerationInfo info;
    private final int rows;
    private final int[][] unitRows;
    private final CacheDecider[] deciders;
    private final List<Measurement> measured;
    private final boolean measuresComputedChange;
    private final List<BlockRange> ranges;
    private final FeatureCache<T> cache;
    private final FusedSteps<T> fused;
    private final boolean checkFinite;
    /** The decisions of the running step, made before it (fused-step generations), or null. */
    private Decision[][] predecided;
    private final GenerationStats stats;
    private final Context context = new Context();
    private int nextStep;
    private boolean closed;

    private Generation(Builder<T> b) {
        this.model = b.model;
        this.ops = model.ops();
        this.config = model.config();
        this.policy = b.policy;
        if (b.steps < 1) {
            throw new IllegalArgumentException("a generation needs at least one step, got " + b.steps);
        }
        if (b.images < 1) {
            throw new IllegalArgumentException("a generation needs at least one image, got " + b.images);
        }
        int history = policy.historyLength();
        if (history < 0) {
            throw new IllegalArgumentException("policy " + policy + " declares a negative historyLength: " + history);
        }
        history = Math.min(history, b.steps);
        boolean separate = b.guided && policy.separateGuidanceHalves();
        this.info = new GenerationInfo(b.steps, config, b.images, b.guided, b.guided && !separate ? 2 : 1);
        this.rows = info.rows();
        int units = separate ? rows : b.images;
        this.unitRows = new int[units][];
        for (int u = 0; u < units; u++) {
            unitRows[u] = info.rowsPerDecider() == 2 ? new int[] {u, u + b.images} : new int[] {u};
        }
        Set<BlockRange> declaredRanges = Objects.requireNonNull(policy.blockRanges(info), "blockRanges");
        this.ranges = checkedRanges(declaredRanges);
        Set<Measurement> declared = Objects.requireNonNull(policy.measurements(info), "measurements");
        this.measured = checkedMeasurements(declared);
        this.measuresComputedChange = declared.contains(Measurement.computedChange());
        long need = worstCaseBytes(history);
        if (need > b.cacheBudget) {
            long references = referenceCount();
            throw new CacheBudgetException(describe(policy), need, b.cacheBudget, history + " computed value(s) of "
                    + config.features() + " features" + (references == 0 ? "" : ", " + references
                    + " measurement reference(s)") + (ranges.isEmpty() ? "" : ", " + ranges.size() + " block-range residual(s)")
                    + ", each " + rows + " rows x " + config.tokens() + " tokens x " + config.hiddenSize() + " float32");
        }
        this.deciders = new CacheDecider[units];
        for (int u = 0; u < units; u++) {
            deciders[u] = policy.newDecider(info);
            if (deciders[u] == null) {
                throw new IllegalStateException("policy " + describe(policy) + " returned no decider (newDecider gave null)");
            }
        }
        this.cache = new FeatureCache<>(ops, config.features(), history, units, rows, declaredRanges);
        this.checkFinite = b.checkFinite;
        // Fused steps need every decision before the step runs, which a measuring policy cannot give,
        // and whole steps, which residual ranges break up.
        this.fused = b.fusedSteps && measured.isEmpty() && !measuresComputedChange && ranges.isEmpty()
                ? model.fusedSteps().orElse(null) : null;
        this.stats = new GenerationStats(info, units);
    }

    /** Starts describing a generation of {@code model} under {@code policy}. */
    public static <T extends Tensor> Builder<T> builder(DiTModel<T> model, CachePolicy policy) {
        return new Builder<>(model, policy);
    }

    /** Configures and opens a {@link Generation}. */
    public static final class Builder<T extends Tensor> {
        private final DiTModel<T> model;
        private final CachePolicy policy;
        private int steps = -1;
        private int images = -1;
        private boolean guided;
        private long cacheBudget = Long.MAX_VALUE;
        private boolean fusedSteps = true;
        private boolean checkFinite = true;

        private Builder(DiTModel<T> model, CachePolicy policy) {
            this.model = Objects.requireNonNull(model, "model");
            this.policy = Objects.requireNonNull(policy, "policy");
        }

        /** Number of sampler steps {@code K} (required). */
        public Builder<T> steps(int k) {
            this.steps = k;
            return this;
        }

        /** Number of images in the batch (required). */
        public Builder<T> images(int n) {
            this.images = n;
            return this;
        }

        /** Whether every image runs as a conditional and an unconditional row (CFG); default false. */
        public Builder<T> guided(boolean on) {
            this.guided = on;
            return this;
        }

        /**
         * The most bytes the cache may hold (default: unlimited). {@link #open()} refuses a
         * policy whose worst case is larger with a {@link CacheBudgetException}.
         */
        public Builder<T> cacheBudget(long bytes) {
            if (bytes < 0) {
                throw new IllegalArgumentException("cache budget must be >= 0 bytes, got " + bytes);
            }
            this.cacheBudget = bytes;
            return this;
        }

        /**
         * Whether steps whose decisions are uniform run as one call of the model's
         * {@link DiTModel#fusedSteps()} (default true; a model without them, or a policy that
         * declares measurements, always runs the stages).
         */
        public Builder<T> fusedSteps(boolean on) {
            this.fusedSteps = on;
            return this;
        }

        /**
         * Whether each step's output is checked for NaN and infinity (default true; one
         * reduction per step, see the class comment).
         */
        public Builder<T> checkFinite(boolean on) {
            this.checkFinite = on;
            return this;
        }

        /**
         * Opens the generation: checks the policy's measurements against the model, its worst
         * case against the budget, and makes one decider per image.
         */
        public Generation<T> open() {
            return new Generation<>(this);
        }
    }

    private List<Measurement> checkedMeasurements(Set<Measurement> declared) {
        List<Measurement> out = new ArrayList<>();
        for (Measurement m : declared) {
            if (m instanceof Measurement.ModulatedInputChange mi) {
                checkBlock(m, mi.block());
            } else if (m instanceof Measurement.ResidualChange r) {
                checkBlock(m, r.block());
            } else if (m instanceof Measurement.ResidualMagnitude r) {
                if (!ranges.contains(r.range())) {
                    throw new IllegalArgumentException("policy " + describe(policy) + " declares " + m + " but not "
                            + r.range() + " in blockRanges(): the magnitude is taken when that residual is stored");
                }
            } else {
                continue;
            }
            out.add(m);
        }
        return out;
    }

    private void checkBlock(Measurement m, int block) {
        if (block < 0 || block >= config.depth()) {
            throw new IllegalArgumentException("policy " + describe(policy) + " declares " + m + " but the model has blocks 0.."
                    + (config.depth() - 1));
        }
    }

    private List<BlockRange> checkedRanges(Set<BlockRange> declared) {
        List<BlockRange> out = new ArrayList<>();
        for (BlockRange r : declared) {
            if (r.to() > config.depth()) {
                throw new IllegalArgumentException("policy " + describe(policy) + " declares " + r + " but the model has blocks 0.."
                        + (config.depth() - 1));
            }
            out.add(r);
        }
        out.sort(java.util.Comparator.comparingInt(BlockRange::from).thenComparingInt(BlockRange::to));
        return out;
    }

    /** Measurements that keep the previous value as a tensor. */
    private long referenceCount() {
        return measured.stream().filter(m -> !(m instanceof Measurement.ResidualMagnitude)).count();
    }

    /** The most bytes the cache can hold under this policy: every value, reference and residual, whole batch. */
    private long worstCaseBytes(int history) {
        long perTensor = rows * config.featureBytesPerRow();
        return ((long) history * config.features() + referenceCount() + ranges.size()) * perTensor;
    }

    // ---- the step ----------------------------------------------------------------------------

    /**
     * Runs the cached forward pass of one sampler step.
     *
     * @param step the sampler step; must be the next one ({@code step() == 0} first)
     * @param x latent {@code [rows, C, H, W]}
     * @param conditioning one row per latent row
     * @return model output {@code [rows, outC, H, W]} in the caller's current scope
     * @throws IllegalArgumentException for input that does not fit the model or this batch;
     *     the step is then not consumed
     * @throws IllegalStateException if the generation is closed or the step is out of order
     */
    @Override
    public T predict(SamplingStep step, T x, Conditioning conditioning) {
        checkStep(step);
        checkInput(x, conditioning);
        int s = step.step();
        nextStep = s + 1;
        stats.startStep(s);
        for (CacheDecider d : deciders) {
            d.beginStep(step);
        }
        float[] timesteps = new float[rows];
        Arrays.fill(timesteps, (float) step.timestep());
        T out = fused != null ? fusedOrStaged(step, x, timesteps, conditioning) : forward(step, x, timesteps, conditioning);
        if (checkFinite) {
            try {
                NonFiniteOutputException.check(ops, out, step, this::describeRow);
            } catch (NonFiniteOutputException e) {
                out.close();
                throw e;
            }
        }
        context.block = config.depth();
        context.branch = -1;
        for (int u = 0; u < deciders.length; u++) {
            context.unit = u;
            deciders[u].endStep(context);
        }
        stats.updatePeakCacheBytes(cache.peakBytes());
        if (LOG.isTraceEnabled()) {
            LOG.trace("step {} (t={}): cache {} bytes", s, step.timestep(), cache.currentBytes());
        }
        return out;
    }

    /**
     * A step of a generation that can use the model's fused steps: every decision is made
     * first (the policy measures nothing, so nothing it could read comes later), then a step
     * whose decisions are uniform runs as one engine call, and any other runs the stages.
     */
    private T fusedOrStaged(SamplingStep step, T x, float[] timesteps, Conditioning conditioning) {
        context.step = step;
        Decision[][] decisions = new Decision[config.features()][];
        boolean[] all = new boolean[deciders.length];
        Arrays.fill(all, true);
        for (int b = 0; b < config.depth(); b++) {
            context.block = b;
            for (int i = 0; i < config.branches(); i++) {
                context.branch = i;
                decisions[config.feature(b, i)] = decide(config.feature(b, i), all);
            }
        }
        Decision uniform = uniform(decisions);
        if (uniform == null) {
            predecided = decisions;
            try {
                return forward(step, x, timesteps, conditioning);
            } finally {
                predecided = null;
            }
        }
        for (int f = 0; f < decisions.length; f++) {
            for (int u = 0; u < deciders.length; u++) {
                stats.record(step.step(), u, f, uniform.kind());
            }
        }
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
            T out;
            if (uniform.kind() == Decision.Kind.COMPUTE) {
                FusedSteps.Full<T> full = fused.full(x, timesteps, conditioning);
                if (!cache.storeAllStacked(step.step(), full.features())) {
                    full.features().close();
                }
                out = full.output();
            } else {
                out = fused.cached(x, timesteps, conditioning, stackedSlots(uniform), uniform.coefficients());
            }
            return ops.attach(out, outer);
        }
    }

    /** The decision every image made for every feature, or null if they differ. */
    private static Decision uniform(Decision[][] decisions) {
        Decision first = decisions[0][0];
        for (Decision[] feature : decisions) {
            for (Decision d : feature) {
                if (!d.equals(first)) {
                    return null;
                }
            }
        }
        return first;
    }

    /** The cached slots a REUSE or FORECAST decision combines, each stacked, in the current scope or the cache's. */
    private List<T> stackedSlots(Decision decision) {
        int n = decision.coefficients().length;
        List<T> slots = new ArrayList<>(n);
        for (int j = 0; j < n; j++) {
            T s = cache.stacked(j);
            slots.add(s != null ? s : stackSlot(j));
        }
        return slots;
    }

    /** Slot {@code j} of every feature stacked anew (after a staged step changed some), in the current scope. */
    private T stackSlot(int j) {
        List<T> features = new ArrayList<>(config.features());
        for (int f = 0; f < config.features(); f++) {
            features.add(cache.slot(f, j));
        }
        return ops.stack(features);
    }

    private T forward(SamplingStep step, T x, float[] timesteps, Conditioning conditioning) {
        context.step = step;
        context.values.clear();
        int units = deciders.length;
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
            Embedding<T> e = model.embed(x, timesteps, conditioning);
            List<Modulation<T>> mods = model.modulations(e);
            Pass pass = new Pass(e.tokens());
            for (int b = 0; b < config.depth(); b++) {
                Modulation<T> m = mods.get(b);
                context.block = b;
                boolean[] active = pass.activeAt(b);
                for (BlockRange r : ranges) {
                    if (r.from() == b) {
                        pass.startRange(r, active);
                    }
                }
                if (anyOf(active)) {
                    runBlock(pass, b, m, e, active);
                }
                for (BlockRange r : ranges) {
                    if (r.to() == b + 1) {
                        endRange(pass, r);
                    }
                }
            }
            return ops.attach(model.finalLayer(pass.h, e), outer);
        }
    }

    /**
     * The running tokens of one forward pass and what the pass must keep of them: the input of
     * every block range being recorded (and of a block whose residual is measured), and per
     * image the block from which it runs again after skipping a range.
     */
    private final class Pass {
        T h;
        final int[] resumeAt = new int[deciders.length];
        final Map<BlockRange, T> rangeInputs = new LinkedHashMap<>();
        final Map<BlockRange, boolean[]> rangeComputed = new LinkedHashMap<>();
        final Map<T, Integer> holds = new java.util.IdentityHashMap<>();

        Pass(T tokens) {
            this.h = tokens;
        }

        boolean[] activeAt(int block) {
            boolean[] active = new boolean[resumeAt.length];
            for (int u = 0; u < active.length; u++) {
                active[u] = resumeAt[u] <= block;
            }
            return active;
        }

        void startRange(BlockRange r, boolean[] active) {
            rangeInputs.put(r, h);
            hold(h);
            rangeComputed.put(r, active.clone());
        }

        void hold(T t) {
            holds.merge(t, 1, Integer::sum);
        }

        /** Drops one hold of {@code t}; closes it when nothing holds it and it is not the running tokens. */
        void release(T t) {
            Integer n = holds.get(t);
            if (n == null || n == 1) {
                holds.remove(t);
                if (t != h) {
                    t.close();
                }
            } else {
                holds.put(t, n - 1);
            }
        }

        /** Makes {@code next} the running tokens, closing the old ones unless held. */
        void advance(T next) {
            T old = h;
            h = next;
            if (old != next && !holds.containsKey(old)) {
                old.close();
            }
        }
    }

    /** One block: measurements, residual skips, then every branch for the images still running. */
    private void runBlock(Pass pass, int b, Modulation<T> m, Embedding<T> e, boolean[] active) {
        Measurement mi = Measurement.modulatedInputChange(b);
        if (measured.contains(mi)) {
            measure(mi, model.modulatedInput(b, pass.h, m), active);
        }
        context.branch = 0;
        Decision[] first = decide(config.feature(b, 0), active);
        skipRanges(pass, b, first, active);
        if (!anyOf(active)) {
            return;
        }
        Measurement residual = Measurement.residualChange(b);
        T blockInput = null;
        if (measured.contains(residual)) {
            blockInput = pass.h;
            pass.hold(blockInput);
        }
        boolean all = allOf(active);
        for (int i = 0; i < config.branches(); i++) {
            context.branch = i;
            Decision[] decisions = i == 0 ? first : decide(config.feature(b, i), active);
            for (Map.Entry<BlockRange, boolean[]> r : pass.rangeComputed.entrySet()) {
                if (r.getKey().contains(b)) {
                    boolean[] computed = r.getValue();
                    for (int u = 0; u < computed.length; u++) {
                        computed[u] &= active[u] && decisions[u].kind() == Decision.Kind.COMPUTE;
                    }
                }
            }
            Feature<T> f = feature(b, i, pass.h, m, e, decisions, active);
            T next = model.addBranch(i, pass.h, m, f.value());
            if (f.owned()) {
                f.value().close();
            }
            if (!all) {
                T mixed = keepRows(next, pass.h, active);
                next.close();
                next = mixed;
            }
            pass.advance(next);
        }
        if (blockInput != null) {
            measure(residual, ops.sub(pass.h, blockInput), active);
            pass.release(blockInput);
        }
    }

    /** Applies the REUSE_RESIDUAL decisions among {@code decisions}: those images skip to the range's end. */
    private void skipRanges(Pass pass, int b, Decision[] decisions, boolean[] active) {
        Map<Integer, List<Integer>> byEnd = new java.util.TreeMap<>();
        for (int u = 0; u < decisions.length; u++) {
            if (active[u] && decisions[u].kind() == Decision.Kind.REUSE_RESIDUAL) {
                byEnd.computeIfAbsent(decisions[u].toBlock(), k -> new ArrayList<>()).add(u);
            }
        }
        int step = context.step.step();
        for (Map.Entry<Integer, List<Integer>> g : byEnd.entrySet()) {
            BlockRange range = new BlockRange(b, g.getKey());
            T residual = cache.residual(range);
            T next;
            if (g.getValue().size() == deciders.length) {
                next = ops.add(pass.h, residual);
            } else {
                int[] r = rowsOf(g.getValue());
                try (T hRows = ops.gatherRows(pass.h, r); T deltaRows = ops.gatherRows(residual, r);
                        T skipped = ops.add(hRows, deltaRows)) {
                    next = ops.replaceRows(pass.h, r, skipped);
                }
            }
            pass.advance(next);
            for (int u : g.getValue()) {
                active[u] = false;
                pass.resumeAt[u] = range.to();
                stats.recordResidualReuse(step, u, range);
                for (boolean[] computed : pass.rangeComputed.values()) {
                    computed[u] = false;
                }
            }
        }
    }

    /** At the end of a range: stores the residual of the images that computed all of it, measures its magnitude. */
    private void endRange(Pass pass, BlockRange r) {
        boolean[] computed = pass.rangeComputed.remove(r);
        T input = pass.rangeInputs.remove(r);
        List<Integer> units = new ArrayList<>();
        for (int u = 0; u < computed.length; u++) {
            if (computed[u]) {
                units.add(u);
            }
        }
        Measurement magnitude = Measurement.residualMagnitude(r);
        boolean measureMagnitude = measured.contains(magnitude);
        double[] values = null;
        if (measureMagnitude) {
            values = new double[deciders.length];
            Arrays.fill(values, Double.NaN);
            context.values.put(magnitude, values);
        }
        if (!units.isEmpty()) {
            T delta = ops.sub(pass.h, input);
            if (measureMagnitude) {
                double[] sums = ops.rowAbsSums(delta);
                long perRow = elementsPerRow(delta);
                for (int u : units) {
                    double sum = 0;
                    for (int row : unitRows[u]) {
                        sum += sums[row];
                    }
                    values[u] = sum / (perRow * unitRows[u].length);
                }
            }
            int[] ids = units.stream().mapToInt(Integer::intValue).toArray();
            if (units.size() == deciders.length) {
                cache.storeResidual(r, context.step.step(), ids, null, delta);
            } else {
                cache.storeResidual(r, context.step.step(), ids, rowsOf(units), delta);
                delta.close();
            }
        }
        pass.release(input);
    }

    private static long elementsPerRow(Tensor t) {
        long[] shape = t.shape();
        long n = 1;
        for (int i = 1; i < shape.length; i++) {
            n *= shape[i];
        }
        return n;
    }

    /** The rows of the active units from {@code next}, the others from {@code previous}, as a new tensor. */
    private T keepRows(T next, T previous, boolean[] active) {
        int[] order = new int[rows];
        for (int u = 0; u < active.length; u++) {
            for (int r : unitRows[u]) {
                order[r] = active[u] ? r : rows + r;
            }
        }
        try (T both = ops.concatBatch(List.of(next, previous))) {
            return ops.gatherRows(both, order);
        }
    }

    private static boolean anyOf(boolean[] flags) {
        for (boolean f : flags) {
            if (f) {
                return true;
            }
        }
        return false;
    }

    private static boolean allOf(boolean[] flags) {
        for (boolean f : flags) {
            if (!f) {
                return false;
            }
        }
        return true;
    }

    /** A feature for the whole batch and whether this pass owns it (may release it after use). */
    private record Feature<T>(T value, boolean owned) {
    }

    /**
     * Computes, reuses and forecasts one (block, branch) for every active image, as decided.
     * Rows of inactive images (skipping this block) hold filler the caller discards.
     */
    private Feature<T> feature(int block, int branch, T h, Modulation<T> m, Embedding<T> e, Decision[] decisions,
            boolean[] active) {
        int f = config.feature(block, branch);
        int step = context.step.step();
        List<Integer> compute = new ArrayList<>();
        List<Integer> reuse = new ArrayList<>();
        Map<Decision, List<Integer>> forecasts = new LinkedHashMap<>();
        for (int u = 0; u < deciders.length; u++) {
            if (!active[u]) {
                continue;
            }
            switch (decisions[u].kind()) {
                case COMPUTE -> compute.add(u);
                case REUSE -> reuse.add(u);
                case FORECAST -> forecasts.computeIfAbsent(decisions[u], d -> new ArrayList<>()).add(u);
                default -> throw new AssertionError(decisions[u]);
            }
            stats.record(step, u, f, decisions[u].kind());
        }
        int units = deciders.length;
        if (compute.size() == units) {
            T value = model.branch(block, branch, h, m, e);
            measureComputed(f, value, null, compute);
            return new Feature<>(value, !cache.storeAll(f, step, value));
        }
        if (reuse.size() == units) {
            return new Feature<>(cache.slot(f, 0), false);
        }
        if (forecasts.size() == 1 && forecasts.values().iterator().next().size() == units) {
            return new Feature<>(forecast(f, forecasts.keySet().iterator().next(), null), true);
        }
        // Mixed: gather each group's rows, then put every row back in its place (inactive rows: any row).
        List<T> parts = new ArrayList<>();
        int[] order = new int[rows];
        int offset = 0;
        T computed = null;
        int[] computedRows = null;
        if (!compute.isEmpty()) {
            computedRows = rowsOf(compute);
            TensorScope here = ops.currentScope();
            try (TensorScope gathered = ops.openScope()) {
                computed = ops.attach(model.branch(block, branch, ops.gatherRows(h, computedRows), rowsOf(m, computedRows),
                        rowsOf(e, computedRows)), here);
            }
            measureComputed(f, computed, computedRows, compute);
            offset = place(order, computedRows, offset);
            parts.add(computed);
        }
        if (!reuse.isEmpty()) {
            int[] r = rowsOf(reuse);
            parts.add(ops.gatherRows(cache.slot(f, 0), r));
            offset = place(order, r, offset);
        }
        for (Map.Entry<Decision, List<Integer>> g : forecasts.entrySet()) {
            int[] r = rowsOf(g.getValue());
            parts.add(forecast(f, g.getKey(), r));
            offset = place(order, r, offset);
        }
        T value;
        try (T all = ops.concatBatch(parts)) {
            value = ops.gatherRows(all, order);
        }
        if (computed != null) {
            cache.storeSome(f, step, compute.stream().mapToInt(Integer::intValue).toArray(), computedRows, computed);
        }
        parts.forEach(Tensor::close);
        return new Feature<>(value, true);
    }

    /** Asks every active unit's decider about {@code feature} (the context's block and branch); null for the others. */
    private Decision[] decide(int feature, boolean[] active) {
        if (predecided != null) {
            return predecided[feature];
        }
        Decision[] out = new Decision[deciders.length];
        for (int u = 0; u < deciders.length; u++) {
            if (!active[u]) {
                continue;
            }
            context.unit = u;
            Decision d = deciders[u].decide(context);
            if (d == null) {
                throw new IllegalStateException("policy " + describe(policy) + " returned no decision at " + context.where());
            }
            if (d.kind() == Decision.Kind.REUSE_RESIDUAL) {
                checkResidualReuse(d, u);
                out[u] = d;
                continue;
            }
            int needed = d.kind() == Decision.Kind.COMPUTE ? 0 : d.terms();
            int held = cache.count(feature, u);
            if (needed > held) {
                throw missing(d, needed, held);
            }
            out[u] = d;
        }
        return out;
    }

    private void checkResidualReuse(Decision d, int unit) {
        if (context.branch != 0) {
            throw new IllegalStateException("policy " + describe(policy) + " decided " + d + " at " + context.where()
                    + "; a block range can only be skipped at the first branch of a block");
        }
        if (d.toBlock() <= context.block || d.toBlock() > config.depth()) {
            throw new IllegalStateException("policy " + describe(policy) + " decided " + d + " at " + context.where()
                    + "; the range must end after block " + context.block + " and at most at the depth " + config.depth());
        }
        BlockRange range = new BlockRange(context.block, d.toBlock());
        if (!cache.keeps(range)) {
            throw new IllegalStateException("policy " + describe(policy) + " decided " + d + " at " + context.where()
                    + " but did not declare " + range + " in blockRanges(); declared: " + ranges);
        }
        if (cache.residualComputedAt(range, unit).isEmpty()) {
            throw new MissingFeatureException("policy " + describe(policy) + " decided " + d + " at " + context.where()
                    + "; no residual of " + range + " has been computed yet for this image (it must run every branch of the"
                    + " range once first)");
        }
    }

    private MissingFeatureException missing(Decision decision, int needed, int held) {
        int history = cache.historyLength();
        String why = needed > history
                ? "; it needs " + needed + " computed values but the policy's historyLength() is " + history
                : held == 0 ? "; no value of this feature has been computed yet for this image (its first step must compute)"
                : "; only " + held + " of the " + needed + " values it needs have been computed";
        return new MissingFeatureException("policy " + describe(policy) + " decided " + decision + " at " + context.where()
                + why);
    }

    /** {@code decision}'s linear combination of cached values, of the whole batch or of {@code rows}. */
    private T forecast(int feature, Decision decision, int[] rows) {
        double[] c = decision.coefficients();
        List<T> terms = new ArrayList<>(c.length);
        for (int j = 0; j < c.length; j++) {
            T slot = cache.slot(feature, j);
            terms.add(rows == null ? slot : ops.gatherRows(slot, rows));
        }
        T value = ops.linearCombination(c, terms);
        if (rows != null) {
            terms.forEach(Tensor::close);
        }
        return value;
    }

    /** The batch rows of these units, unit by unit. */
    private int[] rowsOf(List<Integer> units) {
        int[] out = new int[units.size() * info.rowsPerDecider()];
        int k = 0;
        for (int u : units) {
            for (int r : unitRows[u]) {
                out[k++] = r;
            }
        }
        return out;
    }

    private Modulation<T> rowsOf(Modulation<T> m, int[] rows) {
        List<T> vectors = new ArrayList<>(m.vectors().size());
        for (T v : m.vectors()) {
            vectors.add(ops.gatherRows(v, rows));
        }
        return new Modulation<>(vectors);
    }

    /** The embedding rows a branch may read: conditioning and cross-attention context (not the tokens). */
    private Embedding<T> rowsOf(Embedding<T> e, int[] rows) {
        return new Embedding<>(null, ops.gatherRows(e.conditioning(), rows),
                e.context() == null ? null : ops.gatherRows(e.context(), rows),
                e.contextMask() == null ? null : ops.gatherRows(e.contextMask(), rows));
    }

    /** Records that the parts' rows {@code rows} sit at {@code offset...} of their concatenation. */
    private static int place(int[] order, int[] rows, int offset) {
        for (int i = 0; i < rows.length; i++) {
            order[rows[i]] = offset + i;
        }
        return offset + rows.length;
    }

    // ---- measurements --------------------------------------------------------------------------

    /**
     * Compares {@code now} with each active unit's previous value and keeps the active units'
     * rows as their new reference (the cache takes ownership of {@code now}). Units that are not
     * active, or have no previous value, get no value (empty).
     */
    private void measure(Measurement m, T now, boolean[] active) {
        double[] values = new double[deciders.length];
        Arrays.fill(values, Double.NaN);
        T before = cache.reference(m);
        if (before != null) {
            double[] changes = unitChanges(now, before, null, allUnits());
            for (int u = 0; u < values.length; u++) {
                if (active[u] && cache.hasReference(m, u)) {
                    values[u] = changes[u];
                }
            }
        }
        context.values.put(m, values);
        if (allOf(active)) {
            cache.replaceReference(m, now);
        } else {
            List<Integer> running = new ArrayList<>();
            for (int u = 0; u < active.length; u++) {
                if (active[u]) {
                    running.add(u);
                }
            }
            cache.updateReference(m, now, rowsOf(running), running.stream().mapToInt(Integer::intValue).toArray());
        }
    }

    /** Tells the deciders of {@code units} how much their newly computed rows of a feature changed. */
    private void measureComputed(int feature, T value, int[] valueRows, List<Integer> units) {
        if (!measuresComputedChange || cache.historyLength() == 0) {
            return;
        }
        T previous = cache.slot(feature, 0);
        if (previous == null) {
            return;
        }
        double[] changes;
        if (valueRows == null) {
            changes = unitChanges(value, previous, null, units);
        } else {
            try (T before = ops.gatherRows(previous, valueRows)) {
                changes = unitChanges(value, before, valueRows, units);
            }
        }
        for (int k = 0; k < units.size(); k++) {
            int u = units.get(k);
            if (cache.count(feature, u) > 0) {
                context.unit = u;
                deciders[u].computed(context, changes[k]);
            }
        }
    }

    /**
     * Per unit (in {@code units} order), {@code sum|now - before| / sum|before|} over its rows.
     * The tensors hold the whole batch when {@code tensorRows} is null, else the rows
     * {@code tensorRows} of {@code units}, unit by unit.
     */
    private double[] unitChanges(T now, T before, int[] tensorRows, List<Integer> units) {
        double[] num;
        try (T diff = ops.sub(now, before)) {
            num = ops.rowAbsSums(diff);
        }
        double[] den = ops.rowAbsSums(before);
        double[] out = new double[units.size()];
        int position = 0;
        for (int k = 0; k < units.size(); k++) {
            double n = 0;
            double d = 0;
            for (int r : unitRows[units.get(k)]) {
                int at = tensorRows == null ? r : position++;
                n += num[at];
                d += den[at];
            }
            out[k] = d == 0 ? (n == 0 ? 0 : Double.POSITIVE_INFINITY) : n / d;
        }
        return out;
    }

    private List<Integer> allUnits() {
        List<Integer> all = new ArrayList<>(deciders.length);
        for (int u = 0; u < deciders.length; u++) {
            all.add(u);
        }
        return all;
    }

    // ---- checks --------------------------------------------------------------------------------

    private void checkStep(SamplingStep step) {
        Objects.requireNonNull(step, "step");
        int s = step.step();
        if (closed) {
            throw new IllegalStateException("the generation is closed; open a new one for step " + s);
        }
        if (step.totalSteps() != info.totalSteps()) {
            throw new IllegalStateException("the sampler runs " + step.totalSteps() + " steps but this generation was opened for "
                    + info.totalSteps());
        }
        if (s < nextStep) {
            throw new IllegalStateException("step " + s + " has already run; the next step is " + nextStep);
        }
        if (s != nextStep) {
            throw new IllegalStateException("step " + s + " requested but step " + nextStep
                    + " has not run; steps must run in order 0.." + (info.totalSteps() - 1));
        }
        if (!Double.isFinite(step.timestep())) {
            throw new IllegalArgumentException("timestep must be finite, got " + step.timestep());
        }
    }

    private void checkInput(T x, Conditioning conditioning) {
        Objects.requireNonNull(x, "x");
        long[] shape = x.shape();
        long[] want = {rows, config.inChannels(), config.inputSize(), config.inputSize()};
        if (!Arrays.equals(shape, want)) {
            throw new IllegalArgumentException("latent shape " + Arrays.toString(shape) + " does not fit this generation: expected "
                    + Arrays.toString(want) + " ([" + (info.guided() ? "2 x " : "") + info.images()
                    + " images, in_channels, input_size, input_size])");
        }
        config.conditioning().check(conditioning, rows, true);
    }

    private String describeRow(int r) {
        int images = info.images();
        return "image " + (r % images) + (info.guided() ? (r < images ? " (conditional half)" : " (unconditional half)") : "");
    }

    private static String describe(CachePolicy policy) {
        return policy.spec().orElse(String.valueOf(policy));
    }

    // ---- state ---------------------------------------------------------------------------------

    /** The policy of this generation. */
    public CachePolicy policy() {
        return policy;
    }

    /** Steps, model, batch: what the policy was told. */
    public GenerationInfo info() {
        return info;
    }

    /** The next step to run ({@code totalSteps} when done). */
    public int nextStep() {
        return nextStep;
    }

    /** The statistics so far (a live view; still readable after close). */
    public GenerationStats stats() {
        return stats;
    }

    /** The feature cache, for inspection (bytes, computed steps). */
    public FeatureCache<T> cache() {
        return cache;
    }

    /** Whether the generation is closed. */
    public boolean isClosed() {
        return closed;
    }

    /** Releases the cache. Idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            cache.close();
            LOG.debug("generation with policy {} finished: {}", describe(policy), stats);
        }
    }

    /** The one mutable {@link StepContext}, pointed at (step, block, branch, unit) before each call. */
    private final class Context implements StepContext {
        private final Map<Measurement, double[]> values = new LinkedHashMap<>();
        private SamplingStep step;
        private int block;
        private int branch;
        private int unit;

        String where() {
            int images = info.images();
            return "step " + step.step() + " (loop index " + step.loopIndex() + ", timestep " + step.timestep() + "), block "
                    + block + (branch < 0 ? "" : ", branch " + config.layout().branch(branch)) + ", image " + (unit % images)
                    + (deciders.length > images ? (unit < images ? " (conditional half)" : " (unconditional half)") : "");
        }

        @Override
        public SamplingStep step() {
            return step;
        }

        @Override
        public int block() {
            return block;
        }

        @Override
        public dev.fora.core.model.BranchSpec branch() {
            return config.layout().branch(branchIndex());
        }

        @Override
        public int branchIndex() {
            if (branch < 0) {
                throw new IllegalStateException("the step has ended: there is no branch being decided");
            }
            return branch;
        }

        @Override
        public GenerationInfo info() {
            return info;
        }

        @Override
        public OptionalDouble measurement(Measurement measurement) {
            if (!measured.contains(measurement)) {
                throw new IllegalStateException(measurement + " was not declared in the policy's measurements()"
                        + (measurement instanceof Measurement.ComputedChange ? " (and it is passed to CacheDecider.computed)" : "")
                        + ", so it is not measured");
            }
            if (block < measurement.firstReadableBlock()) {
                throw new IllegalStateException(measurement + " is measured before block " + measurement.firstReadableBlock()
                        + "; it is not available when deciding block " + block);
            }
            double[] v = values.get(measurement);
            return v == null || Double.isNaN(v[unit]) ? OptionalDouble.empty() : OptionalDouble.of(v[unit]);
        }

        @Override
        public int[] computedSteps() {
            return cache.computedSteps(config.feature(block, branchIndex()), unit);
        }

        @Override
        public java.util.OptionalInt residualComputedAt(BlockRange range) {
            if (!cache.keeps(range)) {
                throw new IllegalStateException(range + " was not declared in the policy's blockRanges(); declared: " + ranges);
            }
            return cache.residualComputedAt(range, unit);
        }
    }
}
