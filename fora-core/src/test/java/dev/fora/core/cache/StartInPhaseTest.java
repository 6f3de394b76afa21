package dev.fora.core.cache;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.cache.StepSchedulerTest.Request;
import dev.fora.core.engine.Run;
import dev.fora.core.engine.StepScheduler;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;

/**
 * Hostile cases for {@link Run.Builder#startInPhase}: the start picked is sensible whatever the
 * others are, a run closed while it waits leaves cleanly, and no wait or wrong
 * {@link CachePolicy#fullSteps} declaration changes a sample.
 */
class StartInPhaseTest {

    private static Run<ArrayTensor> open(StepScheduler<ArrayTensor> scheduler, Request r, CachePolicy policy, int wait) {
        return scheduler.newRun(policy, r.sampler()).conditioning(ClassLabels.of(r.label()))
                .noise(new SeededGaussianNoise(r.seed())).guidance(r.cfg(), 3).startInPhase(wait).open();
    }

    private static Run<ArrayTensor> open(StepScheduler<ArrayTensor> scheduler, Request r, int wait) {
        return open(scheduler, r, CachePolicies.parse(r.policy()), wait);
    }

    /** The request run alone on a fresh fused test model, from its first pass. */
    private static float[] alone(Request r, CachePolicy policy) {
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model);
             Run<ArrayTensor> run = open(scheduler, r, policy, 0)) {
            while (run.state() == Run.State.RUNNING) {
                scheduler.pass(List.of(run));
            }
            return model.ops().toFloats(run.latent());
        }
    }

    private static float[] alone(Request r) {
        return alone(r, CachePolicies.parse(r.policy()));
    }

    /** Passes the run waits from now for its first step (it is given to every pass). */
    private static int waited(StepScheduler<ArrayTensor> scheduler, List<Run<ArrayTensor>> runs, Run<ArrayTensor> run) {
        int passes = 0;
        while (run.nextStep() == 0 && run.state() == Run.State.RUNNING) {
            scheduler.pass(runs);
            passes++;
        }
        return passes - 1;
    }

    @Test
    void aRunAllowedToWaitLongDoesNotWaitForTheOthersToEnd() {
        // the first run computes at passes 0, 2, 5, 8, 11. Waiting 2 passes, a 12-step fora:3 run given from pass 1
        // shares every full step but its first; waiting until the first run ends it would share nothing
        Request first = new Request("fora:3", "ddim", 12, 1, 71, 1.5);
        Request second = new Request("fora:3", "ddpm", 12, 2, 72, 1.5);
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
        float[] b;
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
            List<Run<ArrayTensor>> runs = new ArrayList<>(List.of(first.open(scheduler)));
            scheduler.pass(runs);
            Run<ArrayTensor> rb = open(scheduler, second, 20);
            runs.add(rb);
            assertThat(waited(scheduler, runs, rb)).isEqualTo(2);
            while (runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                scheduler.pass(runs);
            }
            b = model.ops().toFloats(rb.latent());
        }
        assertThat(model.full + model.cached).as("fused calls: as in StepSchedulerTest's wait of 2").isEqualTo(16);
        assertThat(b).containsExactly(alone(second));
    }

    @Test
    void aRunAllowedToWaitAFewPassesDoesNotWaitToShareOneStepAtTheOthersEnd() {
        // the first run (fora:3, 12 steps) is 4 steps from its end (full, cached, cached, full) when a 4-step
        // "mask:1101" run joins: starting at once it shares 3 of its 4 fused calls; waiting 3 passes it would share
        // only its first, at the first run's last step
        Request first = new Request("fora:3", "ddim", 12, 1, 73, 1.0);
        Request second = new Request("mask:1101", "ddim", 4, 2, 74, 1.0);
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
            List<Run<ArrayTensor>> runs = new ArrayList<>(List.of(first.open(scheduler)));
            for (int i = 0; i < 8; i++) {
                scheduler.pass(runs);
            }
            Run<ArrayTensor> rb = open(scheduler, second, 4);
            runs.add(rb);
            assertThat(waited(scheduler, runs, rb)).isZero();
        }
    }

    @Test
    void anIntMaxWaitStillPicksAStartPromptly() {
        Request first = new Request("fora:3", "ddim", 12, 1, 75, 1.0);
        Request second = new Request("fora:3", "ddim", 12, 2, 76, 1.0);
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
            List<Run<ArrayTensor>> runs = new ArrayList<>(List.of(first.open(scheduler)));
            scheduler.pass(runs);
            Run<ArrayTensor> rb = open(scheduler, second, Integer.MAX_VALUE);
            runs.add(rb);
            Assertions.assertTimeoutPreemptively(Duration.ofSeconds(20), () -> scheduler.pass(runs));
            while (runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                scheduler.pass(runs);
            }
            assertThat(rb.state()).isEqualTo(Run.State.DONE);
        }
    }

    @Test
    void aRunClosedWhileItWaitsLeavesNothingAndTheOthersGoOn() {
        Request first = new Request("fora:3", "ddim", 9, 1, 77, 1.5);
        Request second = new Request("fora:3", "ddim", 9, 2, 78, 1.5);
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
        ArrayOps ops = model.ops();
        float[] a;
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
            Run<ArrayTensor> ra = first.open(scheduler);
            List<Run<ArrayTensor>> runs = new ArrayList<>(List.of(ra));
            scheduler.pass(runs);
            Run<ArrayTensor> rb = open(scheduler, second, 4);
            runs.add(rb);
            scheduler.pass(runs);
            assertThat(rb.nextStep()).as("it waits").isZero();
            assertThat(rb.state()).isEqualTo(Run.State.RUNNING);
            rb.close();
            assertThat(rb.cacheBytes()).isZero();
            runs.remove(rb);
            while (ra.state() == Run.State.RUNNING) {
                scheduler.pass(runs);
            }
            a = ops.toFloats(ra.latent());
            assertThat(scheduler.cacheBytes()).isZero();
        }
        assertThat(ops.liveTensors()).isZero();
        assertThat(a).containsExactly(alone(first));
    }

    @Test
    void aWaitingRunLeftAloneStartsAtOnce() {
        // its partner ends (or is closed) while it waits: it does not go on waiting with nobody to line up with
        Request first = new Request("fora:3", "ddim", 9, 1, 79, 1.0);
        Request second = new Request("fora:3", "ddim", 9, 2, 80, 1.0);
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
            Run<ArrayTensor> ra = first.open(scheduler);
            List<Run<ArrayTensor>> runs = new ArrayList<>(List.of(ra));
            scheduler.pass(runs);
            Run<ArrayTensor> rb = open(scheduler, second, 4);
            runs.add(rb);
            scheduler.pass(runs);
            assertThat(rb.nextStep()).isZero();
            ra.close();
            scheduler.pass(List.of(rb));
            assertThat(rb.nextStep()).isEqualTo(1);
            while (rb.state() == Run.State.RUNNING) {
                scheduler.pass(List.of(rb));
            }
            assertThat(model.ops().toFloats(rb.latent())).containsExactly(alone(second));
        }
    }

    @Test
    void aRunWhosePolicyDeclaresNoFullStepsStartsAtOnce() {
        Request periodic = new Request("fora:3", "ddim", 9, 1, 81, 1.5);
        for (String spec : new String[] {"fbcache:0.1", "teacache:0.2"}) {
            Request adaptive = new Request(spec, "ddim", 9, 2, 82, 1.5);
            FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
            try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
                List<Run<ArrayTensor>> runs = new ArrayList<>(List.of(periodic.open(scheduler)));
                scheduler.pass(runs);
                Run<ArrayTensor> r = open(scheduler, adaptive, 4);
                runs.add(r);
                assertThat(waited(scheduler, runs, r)).as(spec).isZero();
            }
        }
    }

    @Test
    void runsJoiningInPhaseWithMixedPeriodsStepsAndWrappersEachEqualThemselvesAlone() {
        List<Request> requests = List.of(
                new Request("fora:3", "ddim", 12, 1, 301, 1.5),
                new Request("fora:2", "ddpm", 9, 2, 302, 1.0),
                new Request("warmup:2,fora:4", "ddim", 14, 3, 303, 1.5),
                new Request("cooldown:3,taylorseer:3,2", "ddim", 11, 4, 304, 4.0),
                new Request("fbcache:0.1", "ddim", 10, 5, 305, 1.5),
                new Request("hicache:4,2", "ddpm", 13, 6, 306, 1.0),
                new Request("none", "ddim", 5, 7, 307, 1.5),
                new Request("mask:110101", "ddim", 6, 8, 308, 1.0),
                new Request("fora:3", "ddim", 12, 9, 309, 1.5));
        int[] joinAt = {0, 0, 1, 3, 3, 4, 6, 7, 7};
        int wait = 4;
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
        ArrayOps ops = model.ops();
        List<float[]> together = new ArrayList<>();
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
            List<Run<ArrayTensor>> runs = new ArrayList<>();
            int[] started = new int[requests.size()];
            int pass = 0;
            while (runs.size() < requests.size() || runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                while (runs.size() < requests.size() && joinAt[runs.size()] == pass) {
                    runs.add(open(scheduler, requests.get(runs.size()), wait));
                }
                scheduler.pass(runs);
                for (int k = 0; k < runs.size(); k++) {
                    if (runs.get(k).nextStep() == 1 && started[k] == 0) {
                        started[k] = pass + 1;
                    }
                }
                pass++;
            }
            for (int k = 0; k < runs.size(); k++) {
                assertThat(runs.get(k).state()).isEqualTo(Run.State.DONE);
                assertThat(started[k] - 1 - joinAt[k]).as("passes %s waited", requests.get(k)).isBetween(0, wait);
                together.add(ops.toFloats(runs.get(k).latent()));
            }
        }
        assertThat(ops.liveTensors()).isZero();
        for (int k = 0; k < requests.size(); k++) {
            assertThat(together.get(k)).as(requests.get(k).toString()).containsExactly(alone(requests.get(k)));
        }
    }

    /** A user policy that decides like {@code fora:2} but declares {@code declared} as its full steps. */
    private static CachePolicy declaringWrongly(BitSet declared) {
        CachePolicy fora2 = CachePolicies.parse("fora:2");
        return new CachePolicy() {
            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                return fora2.newDecider(info);
            }

            @Override
            public Optional<BitSet> fullSteps(GenerationInfo info) {
                return Optional.of((BitSet) declared.clone());
            }
        };
    }

    @Test
    void wrongFullStepsDeclarationsCostSpeedButNeverChangeASample() {
        BitSet everyThird = new BitSet();
        for (int s = 0; s < 40; s += 3) {
            everyThird.set(s);
        }
        BitSet beyondTheEnd = new BitSet();
        beyondTheEnd.set(100, 200);
        BitSet all = new BitSet();
        all.set(0, 1000);
        Request base = new Request("fora:3", "ddim", 12, 1, 401, 1.5);
        for (BitSet declared : List.of(everyThird, beyondTheEnd, all, new BitSet())) {
            Request liar = new Request("(liar)", "ddim", 10, 2, 402, 1.5);
            CachePolicy policy = declaringWrongly(declared);
            FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
            ArrayOps ops = model.ops();
            float[] a;
            float[] b;
            try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
                Run<ArrayTensor> ra = base.open(scheduler);
                List<Run<ArrayTensor>> runs = new ArrayList<>(List.of(ra));
                scheduler.pass(runs);
                Run<ArrayTensor> rb = open(scheduler, liar, policy, 4);
                runs.add(rb);
                // and one more honest run that lines up with both
                Run<ArrayTensor> rc = open(scheduler, base, 4);
                runs.add(rc);
                while (runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                    scheduler.pass(runs);
                }
                a = ops.toFloats(ra.latent());
                b = ops.toFloats(rb.latent());
                assertThat(ops.toFloats(rc.latent())).as(declared.toString()).containsExactly(a);
            }
            assertThat(ops.liveTensors()).isZero();
            assertThat(a).containsExactly(alone(base));
            assertThat(b).as(declared.toString()).containsExactly(alone(liar, policy));
        }
    }
}
