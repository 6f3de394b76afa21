package dev.fora.core.cache;

import dev.fora.core.model.DiTConfig;
import java.util.EnumSet;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Runs a searched {@link CacheSchedule} ({@code schedule:FILE}): each (block, branch) computes
 * at the steps its schedule lists, and on the other steps reuses its last computed value or
 * forecasts it with the schedule's {@link CacheSchedule.Forecast} (TaylorSeer's or HiCache's
 * coefficients over the actual gaps between its computed steps). Per-block, per-step schedules
 * of this kind are what ECAD (arXiv 2506.15682) and ProCache (arXiv 2512.17298) search
 * offline; {@code fora tune} searches them on recordings.
 *
 * <p>It composes like any built-in: {@code warmup:K,schedule:FILE} and
 * {@code cooldown:K,schedule:FILE} compute the first or last steps on top of it, and the
 * schedule's {@link CacheSchedule#separateGuidanceHalves()} gives a guided image's halves a
 * decider each.
 *
 * <p><b>Fit checks.</b> A schedule is tuned for one model, sampler and step count
 * ({@link CacheSchedule#target()}). {@link #newDecider} refuses another step count, and a
 * caller that knows the model and sampler calls {@link #checkTarget}; each throws a
 * {@link ScheduleException} naming both values unless the mismatch is allowed ({@link Allow}).
 * An allowed step-count mismatch maps each listed step {@code s} of {@code K} to
 * {@code round(s (K'-1) / (K-1))} of {@code K'}.
 */
public final class SchedulePolicy implements CachePolicy {

    /** A mismatch between the schedule's target and its use that the user allowed. */
    public enum Allow {
        /** Another model digest. */
        MODEL,
        /** Another sampler. */
        SAMPLER,
        /** Another step count (the steps are mapped proportionally). */
        STEPS
    }

    private final CacheSchedule schedule;
    private final String source;
    private final Set<Allow> allowed;

    /**
     * @param schedule the schedule
     * @param source where it was read from, for {@link #spec()} ({@code schedule:SOURCE}); null
     *     for a schedule built in code (no spec)
     * @param allowed the mismatches allowed
     */
    public SchedulePolicy(CacheSchedule schedule, String source, Set<Allow> allowed) {
        this.schedule = Objects.requireNonNull(schedule, "schedule");
        this.source = source;
        this.allowed = allowed.isEmpty() ? EnumSet.noneOf(Allow.class) : EnumSet.copyOf(allowed);
    }

    /** A schedule built in code: no spec, no mismatch allowed. */
    public SchedulePolicy(CacheSchedule schedule) {
        this(schedule, null, Set.of());
    }

    /** The schedule. */
    public CacheSchedule schedule() {
        return schedule;
    }

    /** The mismatches allowed (a copy). */
    public Set<Allow> allowed() {
        return allowed.isEmpty() ? EnumSet.noneOf(Allow.class) : EnumSet.copyOf(allowed);
    }

    /**
     * Checks that the schedule was tuned for this model and sampler.
     *
     * @param model the model's digest
     * @param sampler the sampler id
     * @throws ScheduleException ({@code WRONG_MODEL} or {@code WRONG_SAMPLER}) naming both values,
     *     unless that mismatch is allowed
     */
    public void checkTarget(String model, String sampler) {
        CacheSchedule.Target t = schedule.target();
        if (!allowed.contains(Allow.MODEL) && !t.model().equalsIgnoreCase(model)) {
            throw new ScheduleException(ScheduleException.Reason.WRONG_MODEL, where() + " was tuned for model " + t.model()
                    + ", not " + model + " (allow it with " + allowHint("model") + ")");
        }
        if (!allowed.contains(Allow.SAMPLER) && !t.sampler().equals(sampler)) {
            throw new ScheduleException(ScheduleException.Reason.WRONG_SAMPLER, where() + " was tuned for sampler "
                    + t.sampler() + ", not " + sampler + " (allow it with " + allowHint("sampler") + ")");
        }
    }

    /**
     * The schedule found in {@code policy}, unwrapping {@code warmup:}/{@code cooldown:}, if it
     * runs one.
     */
    public static Optional<SchedulePolicy> in(CachePolicy policy) {
        CachePolicy p = policy;
        while (p instanceof WarmupCooldown w) {
            p = w.inner();
        }
        return p instanceof SchedulePolicy s ? Optional.of(s) : Optional.empty();
    }

    /**
     * @throws ScheduleException ({@code WRONG_STEPS}, {@code UNKNOWN_BLOCK}, {@code UNKNOWN_BRANCH}, {@code INCOMPLETE})
     *     if the schedule does not fit the generation
     */
    @Override
    public CacheDecider newDecider(GenerationInfo info) {
        boolean[][] compute = computeTable(info.config(), info.totalSteps());
        CacheSchedule.Forecast forecast = schedule.forecast();
        DiTConfig c = info.config();
        return context -> compute[c.feature(context.block(), context.branchIndex())][context.step().step()]
                ? Decision.COMPUTE : forecast.decision(context.computedSteps(), context.step().step());
    }

    /** {@code [feature][step]}: whether the feature computes at the step, for a generation of {@code k} steps. */
    private boolean[][] computeTable(DiTConfig config, int k) {
        int tuned = schedule.target().steps();
        if (k != tuned && !allowed.contains(Allow.STEPS)) {
            throw new ScheduleException(ScheduleException.Reason.WRONG_STEPS, where() + " was tuned for " + tuned
                    + " steps, not " + k + " (allow it with " + allowHint("steps") + ")");
        }
        int[] index;
        try {
            index = schedule.branchIndices(config);
        } catch (ScheduleException e) {
            throw source == null ? e : new ScheduleException(e.reason(), where() + ": " + e.getMessage(), e);
        }
        boolean[][] table = new boolean[config.features()][k];
        for (int b = 0; b < config.depth(); b++) {
            for (int r = 0; r < index.length; r++) {
                boolean[] row = table[config.feature(b, r)];
                for (int s : schedule.computeSteps(b, index[r])) {
                    row[tuned == 1 || k == tuned ? s : (int) Math.round((double) s * (k - 1) / (tuned - 1))] = true;
                }
            }
        }
        return table;
    }

    @Override
    public int historyLength() {
        return schedule.forecast().historyLength();
    }

    @Override
    public boolean separateGuidanceHalves() {
        return schedule.separateGuidanceHalves();
    }

    /** {@code schedule:SOURCE}, with {@code ,allow=WHAT} per allowed mismatch; empty for a schedule built in code. */
    @Override
    public Optional<String> spec() {
        if (source == null) {
            return Optional.empty();
        }
        return Optional.of("schedule:" + source + allowed.stream().map(a -> ",allow=" + a.name().toLowerCase(java.util.Locale.ROOT))
                .collect(Collectors.joining()));
    }

    private String where() {
        return source == null ? "the schedule" : "schedule " + source;
    }

    private String allowHint(String what) {
        return source == null ? "Allow." + what.toUpperCase(java.util.Locale.ROOT) : "schedule:" + source + ",allow=" + what;
    }

    @Override
    public String toString() {
        return spec().orElse(schedule.toString());
    }
}
