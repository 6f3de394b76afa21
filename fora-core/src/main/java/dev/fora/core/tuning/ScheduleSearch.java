package dev.fora.core.tuning;

import dev.fora.core.cache.CacheSchedule;
import dev.fora.core.cache.SchedulePolicy;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.recording.Recording;
import dev.fora.core.testing.PolicyHarness;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Random;

/**
 * Searches the {@link CacheSchedule} that minimises the replay estimate
 * ({@link PolicyHarness#replay}, the mean one-step error on recordings) at a FLOP bound.
 *
 * <p><b>The search</b>, a mix of the two published kinds:
 * <ol>
 * <li>Start from the uniform schedule at the bound: every (block, branch) computes the same
 *     {@code m = floor(K / target)} steps, evenly spread from the first to the last step (FORA's
 *     static interval when {@code K} allows it).</li>
 * <li>Forecast settings: replay each candidate forecast (reuse, TaylorSeer orders, HiCache
 *     orders and contractions) on the current schedule and keep the best. This is repeated
 *     between and after the schedule rounds, so the forecast matches the schedule it serves.</li>
 * <li>Schedule: a constraint-aware local search, as ProCache (arXiv 2512.17298) constrains its
 *     offline search to the compute budget, with ECAD's (arXiv 2506.15682) per-block, per-step
 *     mask as the genome and its mutation moves, but a (1+1) acceptance instead of a population:
 *     each move keeps the FLOP bound ({@code computed FLOPs <= all / target}), and is kept only
 *     if the replay estimate falls. Moves: shift one computed step of one (block, branch) to a
 *     nearby or any free step; transfer a computed step from one (block, branch) to another
 *     (any branch kind, if the FLOPs still fit); add a computed step while the budget has room.
 *     A single chain is enough here because a move is cheap to score: the estimate is updated
 *     incrementally for the steps the move can change (checked against the replay in the tests),
 *     so a search tries thousands of moves where ECAD scores generations of full samples.</li>
 * <li>Optionally ({@link Builder#closedLoop}), a closed-loop stage: the replay scores a schedule
 *     by one-step errors against the recorded trajectory, so it does not see an error carried
 *     into the following steps, which under a stochastic sampler (DDPM) is what the images
 *     show. The stage picks the forecast again and continues the same moves, each scored by
 *     generating images with the schedule ({@link ClosedLoop}), as ECAD scores its genomes on
 *     generated samples. It costs a generation per move, so it refines the replay's result
 *     rather than replacing the search. It has two starts to choose from: the replay's search
 *     over every forecast, and the same search over the first-order ones
 *     ({@link #firstOrderForecasts()}; {@link Builder#firstOrderStart}). The replay's one-step
 *     error favours higher orders, which the generated images do not always bear out, and the
 *     stage only changes the forecast of a schedule already shaped for the replay's pick; so it
 *     generates both starts and continues from the closer one (the first on a tie).</li>
 * </ol>
 * With {@link Builder#wholeSteps} the moves shift one computed step of every (block, branch)
 * at once, so each step computes or caches as a whole (a searched {@code mask:}), which the
 * model runs as one fused call per step; per-block schedules make mixed steps, which run
 * stage by stage.
 * The result meets the bound from below (its FLOP speed-up is at least the target) and is no
 * worse than the uniform schedule on the estimate (the closed-loop stage keeps only moves that
 * lower its own error). A fixed seed and evaluation counts give the same schedule, whatever the
 * machine's speed; a time limit is a safety stop that, if hit, ends the search early and is
 * reported.
 */
public final class ScheduleSearch {

    /** A listener for progress: evaluations done of the planned total, and the estimate of the last one. */
    @FunctionalInterface
    public interface Listener {
        /** One more evaluation finished with estimate {@code estimate}. */
        void evaluated(int done, int total, double estimate);
    }

    /**
     * Runs a schedule on the model and scores what it generates against the uncached images
     * (lower is better): the closed-loop error that the open-loop replay estimate stands in
     * for. It must be deterministic (the same schedule gives the same error) for a fixed seed
     * to give the same schedule, and must not use the seeds the schedule is later checked on.
     */
    @FunctionalInterface
    public interface ClosedLoop {
        /** The error of generating with {@code schedule}. */
        double error(CacheSchedule schedule);
    }

    /**
     * What the search found.
     *
     * @param schedule the best schedule
     * @param estimate its replay estimate (mean over the recordings' images)
     * @param flopSpeedup its branch-FLOP speed-up bound
     * @param uniform the uniform schedule at the bound, with the best of the builder's forecasts
     * @param uniformEstimate the uniform schedule's replay estimate
     * @param evaluations replays and closed-loop runs made
     * @param timedOut whether the time limit ended the search
     * @param openLoopClosedError the closed-loop error of the replay's schedule the closed-loop stage
     *     started from (the closer of its starts), or NaN without a closed-loop stage
     * @param closedError the closed-loop error of {@code schedule}, or NaN without a closed-loop stage
     * @param firstOrderStarted whether the closed-loop stage started from the replay's search over
     *     {@link #firstOrderForecasts()}
     */
    public record Result(CacheSchedule schedule, double estimate, double flopSpeedup, CacheSchedule uniform,
            double uniformEstimate, int evaluations, boolean timedOut, double openLoopClosedError, double closedError,
            boolean firstOrderStarted) {
    }

    /** The forecasts tried by default: reuse, TaylorSeer orders 1-3, HiCache orders 2-3 at six contractions. */
    public static List<CacheSchedule.Forecast> defaultForecasts() {
        List<CacheSchedule.Forecast> out = new ArrayList<>();
        out.add(CacheSchedule.Forecast.REUSE);
        for (int o = 1; o <= 3; o++) {
            out.add(CacheSchedule.Forecast.taylorSeer(o));
        }
        for (int o = 2; o <= 3; o++) {
            for (double s : CONTRACTIONS) {
                out.add(CacheSchedule.Forecast.hiCache(o, s));
            }
        }
        return out;
    }

    /**
     * The first-order forecasts, the second start's candidates: reuse, TaylorSeer of order 1, and
     * HiCache of order 1 (a linear forecast whose slope the contraction scales by {@code 2 S^2})
     * at the six contractions of {@link #defaultForecasts()}.
     */
    public static List<CacheSchedule.Forecast> firstOrderForecasts() {
        List<CacheSchedule.Forecast> out = new ArrayList<>();
        out.add(CacheSchedule.Forecast.REUSE);
        out.add(CacheSchedule.Forecast.taylorSeer(1));
        for (double s : CONTRACTIONS) {
            out.add(CacheSchedule.Forecast.hiCache(1, s));
        }
        return out;
    }

    private static final double[] CONTRACTIONS = {0.5, 0.6, 0.7, 0.75, 0.8, 0.9};

    private final List<Recording> recordings;
    private final double target;
    private final String model;
    private final String sampler;
    private final long seed;
    private final int evaluations;
    private final long timeLimitNanos;
    private final List<CacheSchedule.Forecast> forecasts;
    private final boolean firstOrderStart;
    private final boolean separateGuidanceHalves;
    private final boolean wholeSteps;
    private final Listener listener;
    private final ClosedLoop closedLoop;
    private final int closedLoopMoves;
    private final DiTConfig config;
    private final int steps;
    private final int features;
    private final int branches;
    private final double[] weight;
    private final double budget;
    private OpenLoopReplay replay;
    private int done;
    private long deadline;
    private boolean timedOut;

    private ScheduleSearch(Builder b) {
        if (b.recordings.isEmpty()) {
            throw new IllegalArgumentException("the search needs at least one recording");
        }
        this.recordings = List.copyOf(b.recordings);
        Recording first = recordings.get(0);
        for (Recording r : recordings) {
            if (!r.config().equals(first.config()) || r.steps() != first.steps()) {
                throw new IllegalArgumentException("the recordings must share the model shape and step count: " + r + " vs "
                        + first);
            }
        }
        if (!(b.target >= 1)) {
            throw new IllegalArgumentException("the target speed-up must be >= 1, got " + b.target);
        }
        this.config = first.config();
        this.steps = first.steps();
        if (b.target > steps) {
            throw new IllegalArgumentException("the target speed-up " + b.target + " is above " + steps
                    + ", the bound of computing only the first of " + steps + " steps");
        }
        this.target = b.target;
        this.model = b.model;
        this.sampler = b.sampler;
        this.seed = b.seed;
        this.evaluations = b.evaluations;
        this.timeLimitNanos = b.timeLimitNanos;
        this.forecasts = List.copyOf(b.forecasts);
        this.firstOrderStart = b.firstOrderStart && b.closedLoop != null;
        this.separateGuidanceHalves = b.separateGuidanceHalves;
        this.wholeSteps = b.wholeSteps;
        this.listener = b.listener;
        this.closedLoop = b.closedLoop;
        this.closedLoopMoves = b.closedLoop == null ? 0 : b.closedLoopMoves;
        this.features = config.features();
        this.branches = config.layout().size();
        this.weight = new double[features];
        double all = 0;
        for (int f = 0; f < features; f++) {
            weight[f] = config.branchFlopsPerSample(f % branches);
            all += weight[f] * steps;
        }
        this.budget = all / target;
    }

    /**
     * A search over {@code recordings} (the same model shape, sampler and step count) for the
     * bound {@code targetSpeedup}.
     */
    public static Builder builder(List<Recording> recordings, double targetSpeedup) {
        return new Builder(recordings, targetSpeedup);
    }

    /**
     * The number of evaluations {@link #run()} plans: the forecast rounds and schedule moves of
     * the replay (twice with the first-order start), then, with a closed-loop stage, its forecast
     * round and moves.
     */
    public int plannedEvaluations() {
        int second = firstOrderStart ? 3 * firstOrderForecasts().size() + evaluations + 1 : 0;
        int candidates = Math.max(forecasts.size(), firstOrderStart ? firstOrderForecasts().size() : 0);
        return 3 * forecasts.size() + evaluations + second
                + (closedLoop == null ? 0 : 1 + candidates + closedLoopMoves);
    }

    /** Runs the search. */
    public Result run() {
        deadline = System.nanoTime() + timeLimitNanos;
        replay = new OpenLoopReplay(recordings);
        Start start = replayed(forecasts);
        CacheSchedule uniform = start.uniform;
        CacheSchedule found = schedule(start.mask, start.scored.forecast());
        double openLoopClosed = Double.NaN;
        double closed = Double.NaN;
        boolean firstOrderStarted = false;
        if (closedLoop != null && !timedOut) {
            openLoopClosed = counted(closedLoop.error(found));
            if (firstOrderStart && !timedOut) {
                Start low = replayed(firstOrderForecasts());
                if (!timedOut) {
                    double e = counted(closedLoop.error(schedule(low.mask, low.scored.forecast())));
                    if (e < openLoopClosed) {
                        start = low;
                        openLoopClosed = e;
                        firstOrderStarted = true;
                    }
                }
            }
            Scored best = closedForecast(start.mask, new Scored(start.scored.forecast(), openLoopClosed), start.candidates);
            closed = closedMoves(start.mask, best, start.random);
            found = schedule(start.mask, best.forecast());
        }
        return new Result(found, replayEstimate(found), found.flopSpeedup(config), uniform, replayEstimate(uniform), done,
                timedOut, openLoopClosed, closed, firstOrderStarted);
    }

    /**
     * Where the replay's search over {@code candidates} ended: its mask and forecast, the uniform
     * schedule with the best of the candidates, and the moves' random state (the closed loop
     * continues it, so a start is reproduced whether or not another was tried first).
     */
    private record Start(boolean[][] mask, Scored scored, CacheSchedule uniform, Random random,
            List<CacheSchedule.Forecast> candidates) {
    }

    /** The replay's search over {@code candidates}, from the uniform schedule at the bound. */
    private Start replayed(List<CacheSchedule.Forecast> candidates) {
        Random random = new Random(seed);
        boolean[][] mask = uniformMask();
        Scored scored = bestForecast(mask, null, Double.POSITIVE_INFINITY, candidates);
        CacheSchedule uniform = schedule(mask, scored.forecast());
        int half = evaluations / 2;
        for (int round = 0; round < 2 && !timedOut; round++) {
            replay.reset(mask, scored.forecast());
            double e = improve(mask, scored.estimate(), round == 0 ? half : evaluations - half, random);
            scored = bestForecast(mask, scored.forecast(), e, candidates);
        }
        return new Start(mask, scored, uniform, random, candidates);
    }

    /** The forecast of {@code candidates} with the lowest closed-loop error on {@code mask}; {@code current} wins ties. */
    private Scored closedForecast(boolean[][] mask, Scored current, List<CacheSchedule.Forecast> candidates) {
        Scored best = current;
        for (CacheSchedule.Forecast f : candidates) {
            if (timedOut) {
                break;
            }
            if (!f.equals(current.forecast())) {
                double e = counted(closedLoop.error(schedule(mask, f)));
                if (e < best.estimate()) {
                    best = new Scored(f, e);
                }
            }
        }
        return best;
    }

    /**
     * The closed-loop stage's local search: the replay's moves, each scored by running the
     * schedule ({@link ClosedLoop}) and kept if the error falls. Returns the final error; the
     * forecast stays {@code start}'s.
     */
    private double closedMoves(boolean[][] mask, Scored start, Random random) {
        double best = start.estimate();
        double cost = cost(mask);
        for (int i = 0; i < closedLoopMoves && !timedOut; i++) {
            Move m = propose(mask, cost, random);
            if (m == null) {
                continue;
            }
            m.apply(mask);
            double e = counted(closedLoop.error(schedule(mask, start.forecast())));
            if (e < best) {
                best = e;
                cost += m.costChange(weight);
            } else {
                m.undo(mask);
            }
        }
        return best;
    }

    /** A forecast and the estimate it reached. */
    private record Scored(CacheSchedule.Forecast forecast, double estimate) {
    }

    /** Every feature computes the same evenly spread {@code floor(K / target)} steps, the first and the last among them. */
    private boolean[][] uniformMask() {
        int m = Math.max(1, (int) Math.floor(steps / target + 1e-9));
        boolean[][] mask = new boolean[features][steps];
        for (boolean[] row : mask) {
            for (int i = 0; i < m; i++) {
                row[m == 1 ? 0 : (int) Math.round((double) i * (steps - 1) / (m - 1))] = true;
            }
        }
        return mask;
    }

    /**
     * The forecast of {@code candidates} with the lowest estimate on {@code mask}; {@code current}
     * (with its known estimate) wins ties.
     */
    private Scored bestForecast(boolean[][] mask, CacheSchedule.Forecast current, double currentEstimate,
            List<CacheSchedule.Forecast> candidates) {
        Scored best = new Scored(current, currentEstimate);
        for (CacheSchedule.Forecast f : candidates) {
            if (f.equals(current) || (timedOut && best.forecast() != null)) {
                continue;
            }
            double e = counted(replay.reset(mask, f));
            if (e < best.estimate() || best.forecast() == null) {
                best = new Scored(f, e);
            }
        }
        return best;
    }

    /**
     * A budget-keeping change of the mask: the computed step {@code removeStep} of each of
     * {@code removeFeatures} moves to {@code addStep} of the matching {@code addFeatures} (no
     * removal when {@code removeStep} is -1, an added step).
     */
    private record Move(int[] removeFeatures, int removeStep, int[] addFeatures, int addStep) {

        void apply(boolean[][] mask) {
            if (removeStep >= 0) {
                for (int f : removeFeatures) {
                    mask[f][removeStep] = false;
                }
            }
            for (int f : addFeatures) {
                mask[f][addStep] = true;
            }
        }

        void undo(boolean[][] mask) {
            for (int f : addFeatures) {
                mask[f][addStep] = false;
            }
            if (removeStep >= 0) {
                for (int f : removeFeatures) {
                    mask[f][removeStep] = true;
                }
            }
        }

        double costChange(double[] weight) {
            double c = 0;
            for (int f : addFeatures) {
                c += weight[f];
            }
            if (removeStep >= 0) {
                for (int f : removeFeatures) {
                    c -= weight[f];
                }
            }
            return c;
        }

        /** The features whose computed steps change. */
        int[] changed() {
            return removeStep < 0 || java.util.Arrays.equals(removeFeatures, addFeatures) ? addFeatures
                    : java.util.stream.IntStream.concat(java.util.Arrays.stream(removeFeatures),
                            java.util.Arrays.stream(addFeatures)).toArray();
        }
    }

    /** The local search: {@code moves} budget-keeping moves on {@code mask}, each kept if the estimate falls. */
    private double improve(boolean[][] mask, double start, int moves, Random random) {
        double best = start;
        double cost = cost(mask);
        for (int i = 0; i < moves && !timedOut; i++) {
            Move m = propose(mask, cost, random);
            if (m == null) {
                continue;
            }
            int[] changed = m.changed();
            replay.begin(m.removeStep() < 0 ? m.addStep() : Math.min(m.removeStep(), m.addStep()),
                    Math.max(m.removeStep(), m.addStep()), changed);
            m.apply(mask);
            double e = counted(replay.end(changed));
            if (e < best) {
                best = e;
                cost += m.costChange(weight);
            } else {
                replay.revert();
                m.undo(mask);
            }
        }
        return best;
    }

    /**
     * A random move that keeps the budget, or null when the draw gives none. Per block: shift a
     * computed step of one (block, branch), move it to another, or add one while the budget has
     * room. With whole steps: shift a computed step of every feature at once.
     */
    private Move propose(boolean[][] mask, double cost, Random random) {
        int f = random.nextInt(features);
        if (wholeSteps) {
            return proposeWholeStep(mask, random);
        }
        int kind = random.nextInt(3);
        if (kind == 2 && budget - cost >= lightest()) {
            int addStep = 1 + random.nextInt(steps - 1);
            if (mask[f][addStep] || cost + weight[f] > budget * (1 + 1e-12)) {
                return null;
            }
            return new Move(new int[0], -1, new int[] {f}, addStep);
        }
        int removeStep = pickComputed(mask[f], random);
        if (removeStep < 0) {
            return null;
        }
        int addFeature;
        int addStep;
        if (kind == 0) {
            addFeature = f;
            addStep = random.nextInt(10) < 7 ? removeStep + (random.nextBoolean() ? 1 : -1) * (1 + random.nextInt(3))
                    : 1 + random.nextInt(steps - 1);
        } else {
            addFeature = random.nextInt(features);
            addStep = 1 + random.nextInt(steps - 1);
        }
        if (addStep < 1 || addStep >= steps || mask[addFeature][addStep]
                || cost - weight[f] + weight[addFeature] > budget * (1 + 1e-12)) {
            return null;
        }
        return new Move(new int[] {f}, removeStep, new int[] {addFeature}, addStep);
    }

    private double lightest() {
        double lightest = Double.POSITIVE_INFINITY;
        for (double w : weight) {
            lightest = Math.min(lightest, w);
        }
        return lightest;
    }

    /** Moves one computed step of every feature at once. */
    private Move proposeWholeStep(boolean[][] mask, Random random) {
        int removeStep = pickComputed(mask[0], random);
        if (removeStep < 0) {
            return null;
        }
        int addStep = random.nextInt(10) < 7 ? removeStep + (random.nextBoolean() ? 1 : -1) * (1 + random.nextInt(3))
                : 1 + random.nextInt(steps - 1);
        if (addStep < 1 || addStep >= steps || mask[0][addStep]) {
            return null;
        }
        int[] all = java.util.stream.IntStream.range(0, features).toArray();
        return new Move(all, removeStep, all, addStep);
    }

    /** A random computed step after the first, or -1 if the row computes only step 0. */
    private static int pickComputed(boolean[] row, Random random) {
        int n = 0;
        for (int s = 1; s < row.length; s++) {
            n += row[s] ? 1 : 0;
        }
        if (n == 0) {
            return -1;
        }
        int k = random.nextInt(n);
        for (int s = 1; s < row.length; s++) {
            if (row[s] && k-- == 0) {
                return s;
            }
        }
        throw new IllegalStateException("unreachable");
    }

    private double cost(boolean[][] mask) {
        double c = 0;
        for (int f = 0; f < features; f++) {
            for (boolean m : mask[f]) {
                c += m ? weight[f] : 0;
            }
        }
        return c;
    }

    private CacheSchedule schedule(boolean[][] mask, CacheSchedule.Forecast forecast) {
        int[][][] out = new int[config.depth()][branches][];
        for (int f = 0; f < features; f++) {
            int n = 0;
            for (boolean m : mask[f]) {
                n += m ? 1 : 0;
            }
            int[] s = new int[n];
            n = 0;
            for (int k = 0; k < steps; k++) {
                if (mask[f][k]) {
                    s[n++] = k;
                }
            }
            out[f / branches][f % branches] = s;
        }
        List<String> names = new ArrayList<>();
        for (int r = 0; r < branches; r++) {
            names.add(config.layout().branch(r).name());
        }
        return new CacheSchedule(new CacheSchedule.Target(model, sampler, steps), names, out, forecast, separateGuidanceHalves);
    }

    /** The replay estimate of {@code schedule} ({@link PolicyHarness#replay}): the mean one-step error over every recorded image. */
    private double replayEstimate(CacheSchedule schedule) {
        SchedulePolicy policy = new SchedulePolicy(schedule);
        double sum = 0;
        int images = 0;
        for (Recording r : recordings) {
            sum += PolicyHarness.replay(r, policy).estimatedError() * r.images();
            images += r.images();
        }
        return sum / images;
    }

    /** Counts one evaluation of the estimate {@code e}. */
    private double counted(double e) {
        done++;
        if (System.nanoTime() > deadline) {
            timedOut = true;
        }
        if (listener != null) {
            listener.evaluated(done, plannedEvaluations(), e);
        }
        return e;
    }

    /** Configures a {@link ScheduleSearch}. */
    public static final class Builder {
        private final List<Recording> recordings;
        private final double target;
        private String model = "unknown";
        private String sampler = "unknown";
        private long seed = 1;
        private int evaluations = 2000;
        private long timeLimitNanos = Long.MAX_VALUE / 4;
        private List<CacheSchedule.Forecast> forecasts = defaultForecasts();
        private boolean firstOrderStart = true;
        private boolean separateGuidanceHalves;
        private boolean wholeSteps;
        private Listener listener;
        private ClosedLoop closedLoop;
        private int closedLoopMoves;

        private Builder(List<Recording> recordings, double target) {
            this.recordings = List.copyOf(Objects.requireNonNull(recordings, "recordings"));
            this.target = target;
        }

        /** The model digest and sampler id the schedule states it was tuned for. */
        public Builder tunedFor(String modelDigest, String samplerId) {
            this.model = Objects.requireNonNull(modelDigest, "modelDigest");
            this.sampler = Objects.requireNonNull(samplerId, "samplerId");
            return this;
        }

        /** The seed of the moves (default 1). */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** Schedule moves to try (default 2000), on top of the forecast rounds. */
        public Builder evaluations(int moves) {
            if (moves < 0) {
                throw new IllegalArgumentException("moves must be >= 0, got " + moves);
            }
            this.evaluations = moves;
            return this;
        }

        /** A safety stop: ends the search after this long, with the best found so far (then it is not reproducible). */
        public Builder timeLimit(java.time.Duration limit) {
            this.timeLimitNanos = limit.toNanos();
            return this;
        }

        /**
         * With a closed-loop stage, whether it may also start from the replay's search over
         * {@link #firstOrderForecasts()} (default true; false runs the replay's search once).
         */
        public Builder firstOrderStart(boolean on) {
            this.firstOrderStart = on;
            return this;
        }

        /** The forecasts to choose from (default {@link #defaultForecasts()}). */
        public Builder forecasts(List<CacheSchedule.Forecast> candidates) {
            if (candidates.isEmpty()) {
                throw new IllegalArgumentException("at least one forecast candidate is needed");
            }
            this.forecasts = List.copyOf(candidates);
            return this;
        }

        /** Whether the schedule gives a guided image's halves a decider each (default no). */
        public Builder separateGuidanceHalves(boolean separate) {
            this.separateGuidanceHalves = separate;
            return this;
        }

        /**
         * Whether every block and branch computes at the same steps (default no): a step then
         * computes or caches as a whole (a full or a cached fused call where the model has them);
         * the per-block freedom is lost. A per-block schedule's mixed steps are one masked call on
         * a model that {@linkplain dev.fora.core.model.FusedSteps#masks() masks}, the stages on
         * others.
         */
        public Builder wholeSteps(boolean whole) {
            this.wholeSteps = whole;
            return this;
        }

        /**
         * After the replay's search, a closed-loop stage (default none): the forecast is picked
         * again, then {@code moves} more moves are tried, each scored by {@code evaluator} and
         * kept if its error falls. The replay ranks schedules well but sees only one-step errors;
         * this stage sees how they carry across steps, at the cost of a generation per move.
         */
        public Builder closedLoop(ClosedLoop evaluator, int moves) {
            if (moves < 0) {
                throw new IllegalArgumentException("closed-loop moves must be >= 0, got " + moves);
            }
            this.closedLoop = Objects.requireNonNull(evaluator, "evaluator");
            this.closedLoopMoves = moves;
            return this;
        }

        /** Called after every evaluation. */
        public Builder listener(Listener l) {
            this.listener = l;
            return this;
        }

        /** The search. */
        public ScheduleSearch build() {
            return new ScheduleSearch(this);
        }
    }
}
