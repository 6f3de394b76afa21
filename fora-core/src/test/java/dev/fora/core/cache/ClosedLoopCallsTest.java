package dev.fora.core.cache;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.engine.Run;
import dev.fora.core.engine.StepScheduler;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.tensor.ArrayTensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Closed-loop clients through one scheduler, as {@code fora bench --clients} drives the service:
 * each client opens its next run 0-2 passes after its last one ends (the time its request takes
 * to arrive). Counted in model calls, which is what a pass costs on a small model.
 */
class ClosedLoopCallsTest {

    private static final int CLIENTS = 8;
    private static final int PER_CLIENT = 6;
    private static final int STEPS = 50;

    @Test
    void runsStartedInPhaseMakeNearlyTheCallsOfStaticBatches() {
        // static batches of 8: one call per step, 6 batches of 50 steps
        int staticCalls = PER_CLIENT * STEPS;
        int inPhase = calls(4);
        int asTheyCome = calls(0);
        assertThat((double) staticCalls / inPhase).as("started in phase (%d calls)", inPhase).isGreaterThan(0.9);
        assertThat((double) staticCalls / asTheyCome).as("started as they come (%d calls)", asTheyCome).isLessThan(0.6);
    }

    /** The model calls of every client's runs of {@code fora:3}, DDIM-50, each run allowed to wait {@code within} passes. */
    private static int calls(int within) {
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
        Random arrival = new Random(1);
        int[] left = new int[CLIENTS];
        int[] opensAt = new int[CLIENTS];
        List<Run<ArrayTensor>> current = new ArrayList<>();
        for (int c = 0; c < CLIENTS; c++) {
            left[c] = PER_CLIENT;
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
                        left[c]--;
                        StepSchedulerTest.Request q = new StepSchedulerTest.Request("fora:3", "ddim", STEPS, c, 100L * c + left[c], 1.5);
                        current.set(c, r = scheduler.newRun(CachePolicies.parse(q.policy()), q.sampler())
                                .conditioning(ClassLabels.of(q.label())).noise(new SeededGaussianNoise(q.seed()))
                                .guidance(q.cfg(), 3).startInPhase(within).open());
                    }
                    if (r != null) {
                        runs.add(r);
                    }
                }
                if (runs.isEmpty() && java.util.Arrays.stream(left).allMatch(n -> n == 0)) {
                    return model.full + model.cached;
                }
                scheduler.pass(runs);
            }
        }
    }
}
