package dev.fora.core.cache;

import dev.fora.core.model.DiTConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * A searched cache schedule: for every (block, branch), the steps at which the branch is
 * computed; on the other steps it is reused or forecast ({@link Forecast}) from its computed
 * values. {@link SchedulePolicy} runs it; {@code fora tune} searches it and writes it as JSON
 * (the file format lives with the file I/O in {@code fora-examples}, the core stays free of
 * JSON). The schedule states the {@link Target} it was tuned for: a schedule is specific to a
 * model, a sampler and a step count.
 *
 * <p>Every step list is strictly increasing, inside {@code 0..steps-1}, and starts with step 0
 * (nothing is cached before the first step). A schedule fits a model only if it lists exactly
 * the model's blocks and branches: a missing one is an error, not a silent "compute always".
 */
public final class CacheSchedule {

    /**
     * What a schedule was tuned for.
     *
     * @param model the model's digest (the SHA-256 of its DiT weights file, or another stable id)
     * @param sampler the sampler id ({@code ddim}, {@code ddpm}, ...)
     * @param steps the sampler step count {@code K}
     */
    public record Target(String model, String sampler, int steps) {
        /** Checks the fields. */
        public Target {
            if (model == null || model.isBlank()) {
                throw new ScheduleException(ScheduleException.Reason.MALFORMED, "a schedule's target model is missing");
            }
            if (sampler == null || sampler.isBlank()) {
                throw new ScheduleException(ScheduleException.Reason.MALFORMED, "a schedule's target sampler is missing");
            }
            if (steps < 1) {
                throw new ScheduleException(ScheduleException.Reason.MALFORMED, "a schedule's step count must be >= 1, got "
                        + steps);
            }
        }
    }

    /** How a branch is filled in on the steps it does not compute. */
    public enum ForecastKind {
        /** Reuse the last computed value (FORA). */
        REUSE,
        /** TaylorSeer's Taylor series over finite differences ({@link TaylorSeerPolicy}). */
        TAYLORSEER,
        /** HiCache's scaled Hermite series ({@link HiCachePolicy}). */
        HICACHE
    }

    /**
     * The forecast on steps that do not compute, with the coefficients of {@link TaylorSeerPolicy}
     * and {@link HiCachePolicy} (the gap between computed steps is whatever the schedule gives).
     *
     * @param kind reuse, TaylorSeer or HiCache
     * @param order the series order {@code >= 1} (0 for reuse)
     * @param sigma HiCache's contraction, {@code 0 < S < 1} (0 otherwise)
     */
    public record Forecast(ForecastKind kind, int order, double sigma) {

        /** Reuse the last computed value. */
        public static final Forecast REUSE = new Forecast(ForecastKind.REUSE, 0, 0);

        /** Checks the fields. */
        public Forecast {
            Objects.requireNonNull(kind, "kind");
            if (kind == ForecastKind.REUSE ? order != 0 || sigma != 0 : order < 1) {
                throw new ScheduleException(ScheduleException.Reason.MALFORMED, kind == ForecastKind.REUSE
                        ? "a reuse forecast has no order or sigma"
                        : kind.name().toLowerCase(Locale.ROOT) + " order must be >= 1, got " + order);
            }
            if (kind == ForecastKind.HICACHE ? !(sigma > 0 && sigma < 1) : kind == ForecastKind.TAYLORSEER && sigma != 0) {
                throw new ScheduleException(ScheduleException.Reason.MALFORMED, kind == ForecastKind.HICACHE
                        ? "HiCache sigma must lie strictly between 0 and 1, got " + sigma : "TaylorSeer has no sigma");
            }
        }

        /** TaylorSeer of {@code order}. */
        public static Forecast taylorSeer(int order) {
            return new Forecast(ForecastKind.TAYLORSEER, order, 0);
        }

        /** HiCache of {@code order} and contraction {@code sigma}. */
        public static Forecast hiCache(int order, double sigma) {
            return new Forecast(ForecastKind.HICACHE, order, sigma);
        }

        /** Computed values per feature the forecast reads: 1 for reuse, {@code order + 1} otherwise. */
        public int historyLength() {
            return kind == ForecastKind.REUSE ? 1 : order + 1;
        }

        /**
         * The decision at step {@code s} given the steps the cached values were computed at
         * (most recent first, at least one): reuse with one value or for {@link #REUSE}, else a
         * forecast with TaylorSeer's or HiCache's coefficients.
         */
        public Decision decision(int[] computed, int s) {
            if (kind == ForecastKind.REUSE || computed.length < 2) {
                return Decision.REUSE;
            }
            return Decision.forecast(kind == ForecastKind.TAYLORSEER ? TaylorSeerPolicy.coefficients(computed, s, order)
                    : HiCachePolicy.coefficients(computed, s, order, sigma));
        }

        @Override
        public String toString() {
            return switch (kind) {
                case REUSE -> "reuse";
                case TAYLORSEER -> "taylorseer order " + order;
                case HICACHE -> "hicache order " + order + " sigma " + SpecNumbers.format(sigma);
            };
        }
    }

    private final Target target;
    private final List<String> branches;
    private final int[][][] steps;
    private final Forecast forecast;
    private final boolean separateGuidanceHalves;

    /**
     * @param target what the schedule was tuned for
     * @param branches the branch names of a block, as the model's layout names them
     * @param steps {@code steps[block][branch]}: the steps that compute, strictly increasing,
     *     starting at 0 (copied)
     * @param forecast how the other steps are filled in
     * @param separateGuidanceHalves whether a guided image's conditional and unconditional rows
     *     get a decider (and a cache history) each ({@link CachePolicy#separateGuidanceHalves()})
     * @throws ScheduleException ({@code MALFORMED}) naming the first invalid entry
     */
    public CacheSchedule(Target target, List<String> branches, int[][][] steps, Forecast forecast,
            boolean separateGuidanceHalves) {
        this.target = Objects.requireNonNull(target, "target");
        this.forecast = Objects.requireNonNull(forecast, "forecast");
        this.branches = List.copyOf(branches);
        if (this.branches.isEmpty() || new HashSet<>(this.branches).size() != this.branches.size()) {
            throw malformed("the branch names must be present and distinct, got " + this.branches);
        }
        if (steps.length == 0) {
            throw malformed("a schedule needs at least one block");
        }
        this.steps = new int[steps.length][][];
        for (int b = 0; b < steps.length; b++) {
            if (steps[b] == null || steps[b].length != this.branches.size()) {
                throw malformed("block " + b + " must list " + this.branches.size() + " branches " + this.branches);
            }
            this.steps[b] = new int[steps[b].length][];
            for (int r = 0; r < steps[b].length; r++) {
                int[] s = Objects.requireNonNull(steps[b][r], "steps").clone();
                String where = "block " + b + " branch " + this.branches.get(r);
                if (s.length == 0 || s[0] != 0) {
                    throw malformed(where + ": the compute steps must start with step 0 (nothing is cached before it), got "
                            + shown(s));
                }
                for (int i = 1; i < s.length; i++) {
                    if (s[i] <= s[i - 1] || s[i] >= target.steps()) {
                        throw malformed(where + ": the compute steps must increase strictly and stay below " + target.steps()
                                + ", got " + shown(s));
                    }
                }
                this.steps[b][r] = s;
            }
        }
        this.separateGuidanceHalves = separateGuidanceHalves;
    }

    /** A step list for a message: its first entries, so that a huge list makes a short message. */
    private static String shown(int[] s) {
        if (s.length <= 12) {
            return Arrays.toString(s);
        }
        return Arrays.toString(Arrays.copyOf(s, 12)).replace("]", ", ... (" + s.length + " steps)]");
    }

    private static ScheduleException malformed(String message) {
        return new ScheduleException(ScheduleException.Reason.MALFORMED, message);
    }

    /** What the schedule was tuned for. */
    public Target target() {
        return target;
    }

    /** The number of blocks the schedule lists. */
    public int depth() {
        return steps.length;
    }

    /** The branch names of a block. */
    public List<String> branches() {
        return branches;
    }

    /** The steps at which {@code block}'s branch {@code branch} (an index into {@link #branches()}) computes (a copy). */
    public int[] computeSteps(int block, int branch) {
        return steps[block][branch].clone();
    }

    /** How the steps that do not compute are filled in. */
    public Forecast forecast() {
        return forecast;
    }

    /** Whether a guided image's halves decide (and cache) apart. */
    public boolean separateGuidanceHalves() {
        return separateGuidanceHalves;
    }

    /** The same schedule with another forecast. */
    public CacheSchedule withForecast(Forecast other) {
        return new CacheSchedule(target, branches, steps, other, separateGuidanceHalves);
    }

    /**
     * The branch-FLOP speed-up bound of the schedule on a model of shape {@code config} (the
     * ratio {@link GenerationStats#flopSpeedup()} reports for it): all branch FLOPs of
     * {@code K} steps over the FLOPs of the computed ones.
     *
     * @throws ScheduleException if the model's layout does not match the schedule
     */
    public double flopSpeedup(DiTConfig config) {
        int[] index = branchIndices(config);
        double all = 0;
        double computed = 0;
        for (int b = 0; b < config.depth(); b++) {
            for (int r = 0; r < config.layout().size(); r++) {
                double flops = config.branchFlopsPerSample(r);
                all += flops * target.steps();
                computed += flops * steps[b][index[r]].length;
            }
        }
        return all / computed;
    }

    /**
     * For each branch of the model's layout, its index in {@link #branches()}.
     *
     * @throws ScheduleException ({@code UNKNOWN_BLOCK}, {@code UNKNOWN_BRANCH}, {@code INCOMPLETE})
     *     if the schedule names a block or branch the model does not have, or leaves one out
     */
    int[] branchIndices(DiTConfig config) {
        String blocks = config.depth() + " blocks (0.." + (config.depth() - 1) + ")";
        if (steps.length > config.depth()) {
            throw new ScheduleException(ScheduleException.Reason.UNKNOWN_BLOCK, "the schedule lists block " + (steps.length - 1)
                    + " but the model has " + blocks);
        }
        if (steps.length < config.depth()) {
            throw new ScheduleException(ScheduleException.Reason.INCOMPLETE, "the schedule lists blocks 0.." + (steps.length - 1)
                    + " but the model has " + blocks + ": it must list every block");
        }
        List<String> names = new ArrayList<>();
        for (int r = 0; r < config.layout().size(); r++) {
            names.add(config.layout().branch(r).name());
        }
        for (String name : branches) {
            if (!names.contains(name)) {
                throw new ScheduleException(ScheduleException.Reason.UNKNOWN_BRANCH, "the schedule lists branch \"" + name
                        + "\" but the model's blocks have " + names);
            }
        }
        int[] index = new int[names.size()];
        for (int r = 0; r < index.length; r++) {
            index[r] = branches.indexOf(names.get(r));
            if (index[r] < 0) {
                throw new ScheduleException(ScheduleException.Reason.INCOMPLETE, "the schedule lists branches " + branches
                        + " but the model's blocks have " + names + ": it must list every branch");
            }
        }
        return index;
    }

    @Override
    public String toString() {
        int total = 0;
        for (int[][] block : steps) {
            for (int[] s : block) {
                total += s.length;
            }
        }
        return "schedule for " + target + ": " + steps.length + " blocks x " + branches + ", " + total
                + " computed (block, branch, step) of " + steps.length * branches.size() * target.steps() + ", " + forecast;
    }
}
