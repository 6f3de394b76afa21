package dev.fora.core.tuning;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fora.core.cache.CacheSchedule;
import dev.fora.core.cache.SchedulePolicy;
import dev.fora.core.recording.Recording;
import dev.fora.core.testing.PolicyHarness;
import dev.fora.core.testing.ReplayReport;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class ScheduleSearchTest {

    private static Recording recording;

    @BeforeAll
    static void record() {
        recording = PolicyHarness.builder().steps(30).batch(2).build().record();
    }

    private static ScheduleSearch.Result search(double target, long seed) {
        return ScheduleSearch.builder(List.of(recording), target).tunedFor("synthetic", "ddim").seed(seed).evaluations(300)
                .build().run();
    }

    @Test
    void meetsTheFlopBoundFromBelowAndBeatsTheUniformSchedule() {
        for (double target : new double[] {4.5, 6.0}) {
            ScheduleSearch.Result r = search(target, 7);
            assertThat(r.flopSpeedup()).as("FLOP bound at target %s", target).isGreaterThanOrEqualTo(target);
            assertThat(r.uniform().flopSpeedup(recording.config())).isGreaterThanOrEqualTo(target);
            assertThat(r.estimate()).as("target %s", target).isLessThan(r.uniformEstimate());
            // the reported numbers are what a replay of the written schedule gives
            ReplayReport replay = PolicyHarness.replay(recording, new SchedulePolicy(r.schedule()));
            assertThat(replay.estimatedError()).isEqualTo(r.estimate());
            assertThat(replay.flopSpeedup()).isCloseTo(r.flopSpeedup(), org.assertj.core.data.Offset.offset(1e-9));
            assertThat(r.schedule().target()).isEqualTo(new CacheSchedule.Target("synthetic", "ddim", 30));
        }
    }

    @Test
    void wholeStepSchedulesComputeEveryBlockAtTheSameSteps() {
        ScheduleSearch.Result r = ScheduleSearch.builder(List.of(recording), 4.5).seed(2).evaluations(200).wholeSteps(true)
                .build().run();
        assertThat(r.flopSpeedup()).isGreaterThanOrEqualTo(4.5);
        assertThat(r.estimate()).isLessThan(r.uniformEstimate());
        for (int block = 0; block < r.schedule().depth(); block++) {
            for (int branch = 0; branch < 2; branch++) {
                assertThat(r.schedule().computeSteps(block, branch)).containsExactly(r.schedule().computeSteps(0, 0));
            }
        }
    }

    @Test
    void aFixedSeedIsDeterministic() {
        ScheduleSearch.Result a = search(4.0, 3);
        ScheduleSearch.Result b = search(4.0, 3);
        assertThat(a.estimate()).isEqualTo(b.estimate());
        assertThat(a.schedule().forecast()).isEqualTo(b.schedule().forecast());
        for (int block = 0; block < a.schedule().depth(); block++) {
            for (int branch = 0; branch < 2; branch++) {
                assertThat(a.schedule().computeSteps(block, branch)).containsExactly(b.schedule().computeSteps(block, branch));
            }
        }
        assertThat(a.evaluations()).isEqualTo(b.evaluations());
    }

    @Test
    void theClosedLoopStageKeepsOnlyMovesThatLowerTheGeneratedError() {
        PolicyHarness harness = PolicyHarness.builder().steps(30).batch(2).build();
        int[] runs = {0};
        ScheduleSearch.ClosedLoop generated = s -> {
            runs[0]++;
            return harness.run(new SchedulePolicy(s)).relativeL1Error();
        };
        ScheduleSearch search = ScheduleSearch.builder(List.of(recording), 4.5).seed(4).evaluations(150)
                .closedLoop(generated, 40).build();
        ScheduleSearch.Result r = search.run();
        int forecasts = (r.firstOrderStarted() ? ScheduleSearch.firstOrderForecasts() : ScheduleSearch.defaultForecasts()).size();
        // both starts, every other forecast of the chosen one, then the moves that keep the budget (at most 40)
        assertThat(runs[0]).isBetween(forecasts + 1, forecasts + 41);
        assertThat(r.evaluations()).isLessThanOrEqualTo(search.plannedEvaluations());
        assertThat(r.closedError()).isEqualTo(harness.run(new SchedulePolicy(r.schedule())).relativeL1Error());
        assertThat(r.closedError()).isLessThan(r.openLoopClosedError());
        assertThat(r.flopSpeedup()).isGreaterThanOrEqualTo(4.5);
        // the same seed again: the same schedule
        ScheduleSearch.Result again = ScheduleSearch.builder(List.of(recording), 4.5).seed(4).evaluations(150)
                .closedLoop(generated, 40).build().run();
        assertThat(again.closedError()).isEqualTo(r.closedError());
        for (int block = 0; block < r.schedule().depth(); block++) {
            for (int branch = 0; branch < 2; branch++) {
                assertThat(again.schedule().computeSteps(block, branch)).containsExactly(r.schedule().computeSteps(block, branch));
            }
        }
        // without the stage there is no closed-loop error
        assertThat(search(4.5, 4).closedError()).isNaN();
    }

    @Test
    void theClosedLoopContinuesFromTheStartWhoseImagesAreCloser() {
        // 50 steps at 2.5x: the replay picks HiCache of order 2 there, so the two starts differ
        PolicyHarness harness = PolicyHarness.builder().steps(50).batch(2).build();
        Recording smooth = harness.record();
        ScheduleSearch.ClosedLoop generated = s -> harness.run(new SchedulePolicy(s)).relativeL1Error();
        ScheduleSearch.Result every = ScheduleSearch.builder(List.of(smooth), 2.5).seed(4).evaluations(60)
                .closedLoop(generated, 10).firstOrderStart(false).build().run();
        ScheduleSearch.Result firstOrder = ScheduleSearch.builder(List.of(smooth), 2.5).seed(4).evaluations(60)
                .forecasts(ScheduleSearch.firstOrderForecasts()).closedLoop(generated, 10).firstOrderStart(false).build().run();
        ScheduleSearch.Result both = ScheduleSearch.builder(List.of(smooth), 2.5).seed(4).evaluations(60)
                .closedLoop(generated, 10).build().run();
        assertThat(every.firstOrderStarted()).isFalse();
        assertThat(firstOrder.firstOrderStarted()).isFalse();
        // the two starts differ here, so the choice is tested
        assertThat(firstOrder.openLoopClosedError()).isNotEqualTo(every.openLoopClosedError());
        boolean lower = firstOrder.openLoopClosedError() < every.openLoopClosedError();
        ScheduleSearch.Result expected = lower ? firstOrder : every;
        assertThat(both.firstOrderStarted()).isEqualTo(lower);
        assertThat(both.openLoopClosedError()).isEqualTo(Math.min(every.openLoopClosedError(), firstOrder.openLoopClosedError()));
        // from there, the same stage as a search that had only that start
        assertThat(both.closedError()).isEqualTo(expected.closedError());
        assertThat(both.schedule().forecast()).isEqualTo(expected.schedule().forecast());
        for (int block = 0; block < both.schedule().depth(); block++) {
            for (int branch = 0; branch < 2; branch++) {
                assertThat(both.schedule().computeSteps(block, branch))
                        .containsExactly(expected.schedule().computeSteps(block, branch));
            }
        }
        // the uniform schedule it reports is the one of every forecast, whichever start it took
        assertThat(both.uniform().forecast()).isEqualTo(every.uniform().forecast());
        assertThat(ScheduleSearch.firstOrderForecasts()).allMatch(f -> f.order() <= 1)
                .contains(CacheSchedule.Forecast.REUSE, CacheSchedule.Forecast.taylorSeer(1),
                        CacheSchedule.Forecast.hiCache(1, 0.75));
    }

    @Test
    void picksTheForecastWithTheLowestEstimate() {
        ScheduleSearch.Result r = ScheduleSearch.builder(List.of(recording), 4.0).evaluations(0).build().run();
        double best = Double.POSITIVE_INFINITY;
        for (CacheSchedule.Forecast f : ScheduleSearch.defaultForecasts()) {
            best = Math.min(best, PolicyHarness.replay(recording, new SchedulePolicy(r.uniform().withForecast(f))).estimatedError());
        }
        assertThat(r.uniformEstimate()).isEqualTo(best);
        assertThat(r.estimate()).isEqualTo(best);
    }

    @Test
    void theIncrementalEstimateIsTheReplayEstimate() {
        java.util.Random random = new java.util.Random(5);
        int features = recording.config().features();
        boolean[][] mask = new boolean[features][30];
        for (boolean[] row : mask) {
            row[0] = true;
            for (int s = 1; s < 30; s++) {
                row[s] = random.nextInt(4) == 0;
            }
        }
        OpenLoopReplay fast = new OpenLoopReplay(List.of(recording));
        for (CacheSchedule.Forecast f : List.of(CacheSchedule.Forecast.REUSE, CacheSchedule.Forecast.taylorSeer(2),
                CacheSchedule.Forecast.hiCache(3, 0.75))) {
            double full = fast.reset(mask, f);
            assertThat(full).isCloseTo(replay(mask, f), org.assertj.core.data.Percentage.withPercentage(1e-4));
            // a move, then its undo, incrementally
            int feature = 3;
            int step = 7;
            fast.begin(step, step, feature);
            mask[feature][step] = !mask[feature][step];
            double moved = fast.end(feature);
            assertThat(moved).isCloseTo(replay(mask, f), org.assertj.core.data.Percentage.withPercentage(1e-4));
            fast.revert();
            mask[feature][step] = !mask[feature][step];
            fast.begin(0, 29, feature);
            assertThat(fast.end(feature)).isCloseTo(full, org.assertj.core.data.Percentage.withPercentage(1e-9));
            // kept moves of two features at once: a computed step moves from one feature to another
            for (int move = 0; move < 30; move++) {
                int a = random.nextInt(features);
                int b = random.nextInt(features);
                int sa = 1 + random.nextInt(29);
                int sb = 1 + random.nextInt(29);
                if (a == b || !mask[a][sa] || mask[b][sb]) {
                    continue;
                }
                fast.begin(Math.min(sa, sb), Math.max(sa, sb), a, b);
                mask[a][sa] = false;
                mask[b][sb] = true;
                assertThat(fast.end(a, b)).isCloseTo(replay(mask, f), org.assertj.core.data.Percentage.withPercentage(1e-4));
            }
        }
    }

    private static double replay(boolean[][] mask, CacheSchedule.Forecast f) {
        int[][][] steps = new int[recording.config().depth()][2][];
        for (int g = 0; g < mask.length; g++) {
            boolean[] row = mask[g];
            steps[g / 2][g % 2] = java.util.stream.IntStream.range(0, 30).filter(s -> row[s]).toArray();
        }
        CacheSchedule s = new CacheSchedule(new CacheSchedule.Target("m", "ddim", 30), List.of("attn", "mlp"), steps, f, false);
        return PolicyHarness.replay(recording, new SchedulePolicy(s)).estimatedError();
    }

    @Test
    void refusesATargetBeyondComputingOnlyTheFirstStep() {
        assertThatThrownBy(() -> ScheduleSearch.builder(List.of(recording), 31).build())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("above 30");
    }
}
