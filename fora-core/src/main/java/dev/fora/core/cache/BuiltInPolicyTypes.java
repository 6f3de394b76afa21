package dev.fora.core.cache;

import dev.fora.core.model.DiTConfig;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalInt;

/**
 * The entries of the built-in policies, in the order the grammar lists them: each one's name,
 * usage, description and parser here, and its spec printed through the same entry by the
 * policy's {@link CachePolicy#spec()}.
 */
final class BuiltInPolicyTypes {

    private BuiltInPolicyTypes() {
    }

    static final PolicyType NONE = PolicyType.of("none", "none", "no cache: every branch computes at every step",
            a -> NoCache.INSTANCE);

    static final PolicyType FORA = PolicyType.of("fora", "fora:N", "FORA static interval, N >= 1",
            a -> new StaticIntervalPolicy(a.positiveInt(0, "interval N")));

    static final PolicyType TAYLORSEER = PolicyType.of("taylorseer", "taylorseer:N[,O]",
            "FORA schedule, cached steps forecast by a Taylor series of order O (default 1)",
            a -> new TaylorSeerPolicy(a.positiveInt(0, "interval N"), a.has(1) ? a.positiveInt(1, "order") : 1));

    static final PolicyType HICACHE = PolicyType.of("hicache", "hicache:N[,O[,S]]",
            "FORA schedule, scaled-Hermite forecasts of order O (default " + HiCachePolicy.DEFAULT_ORDER + "), 0 < S < 1"
                    + " (default " + SpecNumbers.format(HiCachePolicy.DEFAULT_SIGMA) + ")",
            a -> {
                int n = a.positiveInt(0, "interval N");
                if (!a.has(1)) {
                    return HiCachePolicy.of(n);
                }
                int order = a.positiveInt(1, "order");
                return a.has(2) ? new HiCachePolicy(n, order, a.decimal(2, "contraction SIGMA")) : HiCachePolicy.of(n, order);
            });

    static final PolicyType FBCACHE = PolicyType.of("fbcache", "fbcache:T",
            "First-Block-Cache: skip blocks 1.. while block 0's accumulated residual change < T",
            a -> new FirstBlockCachePolicy(a.nonNegativeDecimal(0, "threshold T")))
            .withTuning(new ThresholdTuning() {
                @Override
                public String parameter() {
                    return "T";
                }

                @Override
                public Measurement signal(DiTConfig config) {
                    return Measurement.residualChange(0);
                }

                @Override
                public double stepSignal(double now, double before, Settings settings) {
                    return now;
                }

                @Override
                public CachePolicy policy(double threshold, Settings settings) {
                    return new FirstBlockCachePolicy(threshold);
                }

                @Override
                public String ceiling(DiTConfig config, Settings settings) {
                    return String.format(Locale.ROOT, " (First-Block-Cache computes block 0 at every step: at most %.2fx with %d"
                            + " blocks)", (double) config.depth(), config.depth());
                }
            });

    static final PolicyType TEACACHE = PolicyType.of("teacache", "teacache:T[,C0,C1,...]",
            "TeaCache: skip every block while the accumulated rescaled input change < T",
            a -> {
                double t = a.nonNegativeDecimal(0, "threshold T");
                double[] c = new double[Math.max(0, a.count() - 1)];
                for (int i = 0; i < c.length; i++) {
                    c[i] = a.decimal(i + 1, "coefficient C" + i);
                }
                return new TeaCachePolicy(t, c);
            })
            .withTuning(new ThresholdTuning() {
                @Override
                public String parameter() {
                    return "T";
                }

                @Override
                public Measurement signal(DiTConfig config) {
                    return Measurement.modulatedInputChange(0);
                }

                @Override
                public double stepSignal(double now, double before, Settings settings) {
                    return new TeaCachePolicy(0, settings.rescale()).rescaled(now);
                }

                @Override
                public boolean fitsRescaling() {
                    return true;
                }

                @Override
                public CachePolicy policy(double threshold, Settings settings) {
                    return new TeaCachePolicy(threshold, settings.rescale());
                }
            });

    static final PolicyType MAGCACHE = PolicyType.of("magcache", "magcache:T,K",
            "MagCache-style: skip while the magnitude-ratio error < T, at most K steps in a row",
            a -> new MagCachePolicy(a.nonNegativeDecimal(0, "threshold T"),
                    a.positiveInt(1, "K (most steps skipped in a row)")))
            .withTuning(new ThresholdTuning() {
                @Override
                public String parameter() {
                    return "T";
                }

                @Override
                public Measurement signal(DiTConfig config) {
                    return Measurement.residualMagnitude(new BlockRange(0, config.depth()));
                }

                @Override
                public double stepSignal(double now, double before, Settings settings) {
                    return Math.abs(1 - now / before);
                }

                @Override
                public CachePolicy policy(double threshold, Settings settings) {
                    return new MagCachePolicy(threshold, settings.maxSkips());
                }

                @Override
                public String ceiling(DiTConfig config, Settings settings) {
                    return " (MagCache skips at most K = " + settings.maxSkips() + " steps in a row: at most about "
                            + (settings.maxSkips() + 1) + "x; raise K)";
                }
            });

    static final PolicyType DELTADIT = PolicyType.of("deltadit", "deltadit:N,C[,B]",
            "Delta-DiT: full every N steps, else skip C rear blocks (before step B) or front blocks",
            a -> new DeltaDiTPolicy(a.positiveInt(0, "interval N"), a.positiveInt(1, "cached block count C"),
                    a.has(2) ? OptionalInt.of(a.nonNegativeInt(2, "boundary step B")) : OptionalInt.empty()));

    static final PolicyType PAB = PolicyType.of("pab", "pab:BRANCH=N[,...]",
            "per-branch FORA intervals, any layout branch by name (attn, mlp, cross)",
            a -> {
                Map<String, Integer> intervals = new LinkedHashMap<>();
                for (int i = 0; i == 0 || a.has(i); i++) {
                    String kv = a.text(i, "BRANCH=N");
                    int eq = kv.indexOf('=');
                    if (eq < 0) {
                        throw a.error("needs BRANCH=N pairs like pab:attn=2,mlp=4, got \"" + SpecNumbers.echo(kv) + "\"");
                    }
                    String branch = kv.substring(0, eq);
                    if (!branch.matches("[a-z][a-z0-9_]*")) {
                        throw a.error("branch name \"" + SpecNumbers.echo(branch) + "\" must be lower-case letters, digits"
                                + " and _");
                    }
                    int n = a.positiveInt(kv.substring(eq + 1), "interval of " + branch);
                    if (intervals.put(branch, n) != null) {
                        throw a.error("names branch " + branch + " twice");
                    }
                }
                return new BranchIntervalPolicy(intervals);
            });

    static final PolicyType MASK = PolicyType.of("mask", "mask:BITS",
            "one 0/1 per sampler step, first = noisiest step, which must be 1",
            a -> {
                String bits = a.text(0, "BITS");
                for (int k = 0; k < bits.length(); k++) {
                    char c = bits.charAt(k);
                    if (c != '0' && c != '1') {
                        throw a.error("character " + (k + 1) + " is '" + c + "'; only 0 and 1 are allowed");
                    }
                }
                return StepMaskPolicy.of(bits);
            });

    static final PolicyType WARMUP = PolicyType.decorator("warmup", "warmup:K,spec",
            "compute the first K >= 1 steps, then spec",
            a -> WarmupCooldown.warmup(a.positiveInt(0, "step count K"), a.policy(1, "inner spec")));

    static final PolicyType COOLDOWN = PolicyType.decorator("cooldown", "cooldown:K,spec",
            "compute the last K >= 1 steps, before that spec",
            a -> WarmupCooldown.cooldown(a.positiveInt(0, "step count K"), a.policy(1, "inner spec")));

    /**
     * A searched schedule file ({@link SchedulePolicy}): the core does not open files, so the spec
     * is refused here; the CLI's {@code --policy} reads the file, code passes a {@link CacheSchedule}.
     */
    static final PolicyType SCHEDULE = PolicyType.of("schedule", "schedule:FILE",
            "a searched per-block schedule file from fora tune (the CLI's --policy reads it)",
            a -> {
                throw a.error("names a file, which this parser does not open: the CLI's --policy reads it, and code "
                        + "passes a CacheSchedule to new SchedulePolicy(schedule)");
            });

    /** Every built-in entry, in grammar order. */
    static final List<PolicyType> ALL = List.of(NONE, FORA, TAYLORSEER, HICACHE, FBCACHE, TEACACHE, MAGCACHE, DELTADIT, PAB,
            MASK, WARMUP, COOLDOWN, SCHEDULE);
}
