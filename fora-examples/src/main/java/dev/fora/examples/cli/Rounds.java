package dev.fora.examples.cli;

import dev.fora.examples.engine.Generator;
import dev.fora.examples.engine.Generator.Job;
import dev.fora.examples.progress.Progress;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * How {@code bench} and {@code compare} time several paths (policies, forwards) against each
 * other: untimed warm-up rounds, then timed rounds; every round runs every path once, in turn.
 * The warm-up gives every path its first-use costs (libtorch's shape profiling, the allocator,
 * the JIT) before anything is timed, so the first path is not charged for them; the
 * interleaving makes slow drifts of the machine hit all paths alike.
 */
final class Rounds {

    /** Receives a timed run. */
    @FunctionalInterface
    interface Timed {
        /**
         * @param repeat the timed round, from 0
         * @param path the path's name (a key of the jobs)
         * @param run what the path generated in this round
         */
        void accept(int repeat, String path, Generator.Run run);
    }

    private Rounds() {
    }

    /**
     * Runs {@code warmup} untimed rounds of {@code warmupJob} applied to each job, then
     * {@code repeats} timed rounds of the jobs, each job once per round, in the jobs' order.
     *
     * @param warmupJob the job a warm-up round runs for a path (the path's own job, or a shorter one)
     */
    static void run(Generator generator, Map<String, Job> jobs, UnaryOperator<Job> warmupJob, int warmup, int repeats,
            Progress progress, Timed timed) {
        for (int round = 0; round < warmup + repeats; round++) {
            round(generator, "", jobs, warmupJob, round, warmup, progress, timed);
        }
    }

    /**
     * Round {@code round} of {@link #run} (untimed while {@code round < warmup}): each job once, in
     * the jobs' order. {@code bench} interleaves the rounds of several generators with it.
     *
     * @param label what the progress phase names before the path ("" for nothing)
     */
    static void round(Generator generator, String label, Map<String, Job> jobs, UnaryOperator<Job> warmupJob, int round,
            int warmup, Progress progress, Timed timed) {
        boolean isTimed = round >= warmup;
        for (Map.Entry<String, Job> e : jobs.entrySet()) {
            progress.phase((isTimed ? "repeat " + (round - warmup + 1) : "warm-up " + (round + 1)) + ", " + label
                    + e.getKey());
            if (isTimed) {
                timed.accept(round - warmup, e.getKey(), generator.run(e.getValue(), progress));
            } else {
                generator.run(warmupJob.apply(e.getValue()), progress);
            }
        }
    }

    /** Steps a warm-up round of {@code warmupJob} over {@code jobs} reports to a progress bar. */
    static long warmupSteps(Map<String, Job> jobs, UnaryOperator<Job> warmupJob) {
        long steps = 0;
        for (Job j : jobs.values()) {
            Job w = warmupJob.apply(j);
            steps += (long) w.batches() * w.steps();
        }
        return steps;
    }
}
