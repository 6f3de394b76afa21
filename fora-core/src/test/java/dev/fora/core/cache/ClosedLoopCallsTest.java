package dev.fora.core.cache;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.engine.Run;
import dev.fora.core.engine.StepScheduler;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.tensor.ArrayTensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Closed-loop clients through one scheduler, as {@code fora bench --clients} drives the service:
 * each client opens its next run 0-2 passes after its last one ends (the time its request takes
 * to arrive). Counted in model calls, which is what a pass costs on a small model; the docs'
 * serving page quotes these ratios.
 */
class ClosedLoopCallsTest {

    private static final int CLIENTS = 8;

    /** Request {@code i} of client {@code c}: its policy and step count. */
    private interface Mix {
        StepSchedulerTest.Request request(int client, int i);
    }

    @Test
    void runsStartedInPhaseMakeNearlyTheCallsOfStaticBatches() {
        Mix uniform = (c, i) -> new StepSchedulerTest.Request("fora:3", "ddim", 50, c, 100L * c + i, 1.5);
        // static batches of 8: one call per step, 6 batches of 50 steps
        int staticCalls = 6 * 50;
        int inPhase = calls(uniform, 6, 4, false);
        int asTheyCome = calls(uniform, 6, 0, false);
        assertThat((double) staticCalls / inPhase).as("started in phase (%d calls)", inPhase).isGreaterThan(0.9);
        assertThat((double) staticCalls / asTheyCome).as("started as they come (%d calls)", asTheyCome).isLessThan(0.6);
        // a model that splits runs a newcomer's full step beside the others' cached step in one call
        int split = calls(uniform, 6, 4, true);
        assertThat((double) staticCalls / split).as("started in phase, split calls (%d calls)", split).isGreaterThan(0.94);
    }

    @Test
    void aMixOfPoliciesAndStepCountsStartedInPhaseMakesMostOfTheCallsOfStaticBatches() {
        // each client cycles through (fora:3 | taylorseer:3,2) x (20 | 50 steps) from its own first pair, as the bench
        Mix mixed = (c, i) -> new StepSchedulerTest.Request((i + c) % 2 == 0 ? "fora:3" : "taylorseer:3,2", "ddim",
                (i + c) / 2 % 2 == 0 ? 20 : 50, c, 100L * c + i, 1.5);
        // 16 images of each pair: 2 static batches of 8 each
        int staticCalls = 2 * (20 + 20 + 50 + 50);
        int inPhase = calls(mixed, 8, 4, false);
        assertThat((double) staticCalls / inPhase).as("started in phase (%d calls)", inPhase).isGreaterThan(0.8);
        assertThat((double) staticCalls / calls(mixed, 8, 0, false)).as("started as they come").isLessThan(0.6);
        int split = calls(mixed, 8, 4, true);
        assertThat((double) staticCalls / split).as("started in phase, split calls (%d calls)", split).isGreaterThan(0.92);
    }

    /**
     * The model calls of {@code perClient} requests of every client, each run allowed to wait
     * {@code within} passes for its first step.
     */
    private static int calls(Mix mix, int perClient, int within, boolean splits) {
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT(splits);
        Random arrival = new Random(1);
        int[] left = new int[CLIENTS];
        int[] opensAt = new int[CLIENTS];
        List<Run<ArrayTensor>> current = new ArrayList<>();
        for (int c = 0; c < CLIENTS; c++) {
            left[c] = perClient;
            current.add(null);
        }
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
            for (int pass = 0; ; pass++) {
                List<Run<ArrayTensor>> runs = new ArrayList<>();
                for (int c = 0; c < CLIENTS; c++) {
                    Run<ArrayTensor> r = current.get(c);
                    if (r != null && r.state() != Run.State.RUNNING) {
                        r.close();
                        current.set(c, r = null);
                        opensAt[c] = pass + arrival.nextInt(3);
                    }
                    if (r == null && left[c] > 0 && pass >= opensAt[c]) {
                        StepSchedulerTest.Request q = mix.request(c, perClient - left[c]--);
                        current.set(c, r = scheduler.newRun(CachePolicies.parse(q.policy()), q.sampler())
                                .conditioning(ClassLabels.of(q.label())).noise(new SeededGaussianNoise(q.seed()))
                                .guidance(q.cfg(), 3).startInPhase(within).open());
                    }
                    if (r != null) {
                        runs.add(r);
                    }
                }
                if (runs.isEmpty() && Arrays.stream(left).allMatch(n -> n == 0)) {
                    return model.calls();
                }
                scheduler.pass(runs);
            }
        }
    }
}
