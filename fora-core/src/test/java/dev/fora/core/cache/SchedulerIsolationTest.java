package dev.fora.core.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fora.core.cache.StepSchedulerTest.Request;
import dev.fora.core.engine.Generation;
import dev.fora.core.engine.MissingFeatureException;
import dev.fora.core.engine.Run;
import dev.fora.core.engine.StepScheduler;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.DdimSampler;
import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.NoiseSource;
import dev.fora.core.sampling.NonFiniteOutputException;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.testing.SyntheticDiT;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Hostile cases for per-run isolation in a {@link StepScheduler}: a policy that throws in any of
 * its hooks (or answers what its cache cannot carry out) fails its run alone, in fused and
 * staged passes, frees its cache and leaks no tensor; the lockstep {@link Generation} still
 * throws the policy's own exception; runs batched in one DDIM update stay themselves alone.
 */
class SchedulerIsolationTest {

    /** Where a buggy policy goes wrong. */
    enum Hook { BEGIN_STEP, DECIDE, COMPUTED, END_STEP, REUSE_WITH_NOTHING_CACHED, REUSE_AT_FIRST_STEP }

    private static final int BAD_STEP = 2;

    /** The step at which {@code hook} goes wrong. */
    private static int badStep(Hook hook) {
        return hook == Hook.REUSE_AT_FIRST_STEP ? 0 : BAD_STEP;
    }

    /**
     * A user's policy, computing at even steps and reusing at odd ones, with a bug at step 2 in
     * {@code hook}; {@code measuring} makes it declare a measurement (its passes are staged).
     */
    static CachePolicy buggy(Hook hook, boolean measuring) {
        return new CachePolicy() {
            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                return new CacheDecider() {
                    @Override
                    public void beginStep(SamplingStep step) {
                        if (hook == Hook.BEGIN_STEP && step.step() == BAD_STEP) {
                            throw new IllegalStateException("bug in beginStep");
                        }
                    }

                    @Override
                    public Decision decide(StepContext ctx) {
                        int s = ctx.step().step();
                        if (hook == Hook.DECIDE && s == BAD_STEP && ctx.block() == 1) {
                            throw new ArithmeticException("bug in decide");
                        }
                        if (hook == Hook.REUSE_AT_FIRST_STEP && s == 0) {
                            return Decision.REUSE; // nothing has been computed yet
                        }
                        if (hook == Hook.REUSE_WITH_NOTHING_CACHED && s == BAD_STEP) {
                            // the cache holds one value; a two-term forecast needs two
                            return Decision.forecast(2.0, -1.0);
                        }
                        return s % 2 == 0 ? Decision.COMPUTE : Decision.REUSE;
                    }

                    @Override
                    public void computed(StepContext ctx, double change) {
                        if (hook == Hook.COMPUTED && ctx.step().step() == BAD_STEP && ctx.block() == 1) {
                            throw new UnsupportedOperationException("bug in computed");
                        }
                    }

                    @Override
                    public void endStep(StepContext ctx) {
                        if (hook == Hook.END_STEP && ctx.step().step() == BAD_STEP) {
                            throw new IndexOutOfBoundsException("bug in endStep");
                        }
                    }
                };
            }

            @Override
            public Set<Measurement> measurements(GenerationInfo info) {
                if (hook == Hook.COMPUTED) {
                    return Set.of(Measurement.computedChange());
                }
                return measuring ? Set.of(Measurement.modulatedInputChange(0)) : Set.of();
            }

            @Override
            public int historyLength() {
                return hook == Hook.REUSE_WITH_NOTHING_CACHED ? 2 : 1;
            }
        };
    }

    private static Class<? extends RuntimeException> thrownBy(Hook hook) {
        return switch (hook) {
            case BEGIN_STEP -> IllegalStateException.class;
            case DECIDE -> ArithmeticException.class;
            case COMPUTED -> UnsupportedOperationException.class;
            case END_STEP -> IndexOutOfBoundsException.class;
            case REUSE_WITH_NOTHING_CACHED, REUSE_AT_FIRST_STEP -> MissingFeatureException.class;
        };
    }

    private static final Request BUGGY = new Request("(buggy)", "ddim", 6, 5, 93, 1.5);

    private static Run<ArrayTensor> openBuggy(StepScheduler<ArrayTensor> scheduler, Hook hook, boolean measuring) {
        return scheduler.newRun(buggy(hook, measuring), BUGGY.sampler()).conditioning(ClassLabels.of(BUGGY.label()))
                .noise(new SeededGaussianNoise(BUGGY.seed())).guidance(BUGGY.cfg(), 3).open();
    }

    /** The request run alone on a fresh fused test model. */
    private static float[] alone(Request r) {
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model); Run<ArrayTensor> run = r.open(scheduler)) {
            while (run.state() == Run.State.RUNNING) {
                scheduler.pass(List.of(run));
            }
            assertThat(run.state()).isEqualTo(Run.State.DONE);
            return model.ops().toFloats(run.latent());
        }
    }

    @Test
    void aPolicyThrowingInAnyHookFailsItsRunAloneInFusedAndStagedPassesAndLeaksNothing() {
        for (Hook hook : Hook.values()) {
            for (boolean measuring : new boolean[] {false, true}) {
                if (hook == Hook.COMPUTED && !measuring) {
                    continue; // computed() is only called for a policy that measures
                }
                for (boolean withOthers : new boolean[] {false, true}) {
                    String what = hook + (measuring ? ", staged" : ", fused") + (withOthers ? ", with others" : ", alone");
                    List<Request> others = withOthers
                            ? List.of(new Request("fora:3", "ddim", 6, 1, 91, 1.5),
                                    new Request("taylorseer:3,2", "ddpm", 7, 3, 92, 1.0),
                                    new Request(measuring ? "fbcache:0.1" : "fora:2", "ddim", 6, 4, 94, 1.0),
                                    // decided before the pass but not uniformly: staged next to the buggy run
                                    new Request("pab:attn=2,mlp=3", "ddim", 7, 6, 95, 1.5))
                            : List.of();
                    FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
                    ArrayOps ops = model.ops();
                    List<float[]> results = new ArrayList<>();
                    try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
                        List<Run<ArrayTensor>> runs = new ArrayList<>();
                        for (Request r : others) {
                            runs.add(r.open(scheduler));
                        }
                        Run<ArrayTensor> bad = openBuggy(scheduler, hook, measuring);
                        runs.add(runs.size() / 2, bad);
                        while (runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                            scheduler.pass(runs);
                        }
                        assertThat(bad.state()).as(what).isEqualTo(Run.State.FAILED);
                        assertThat(bad.failure()).as(what).containsInstanceOf(thrownBy(hook));
                        assertThat(bad.nextStep()).as(what).isEqualTo(badStep(hook));
                        assertThat(bad.cacheBytes()).as(what).isZero();
                        for (Run<ArrayTensor> r : runs) {
                            if (r != bad) {
                                assertThat(r.state()).as(what).isEqualTo(Run.State.DONE);
                                results.add(ops.toFloats(r.latent()));
                            }
                        }
                    }
                    assertThat(ops.liveTensors()).as(what + ": tensors left").isZero();
                    for (int k = 0; k < others.size(); k++) {
                        assertThat(results.get(k)).as(what + ": " + others.get(k)).containsExactly(alone(others.get(k)));
                    }
                }
            }
        }
    }

    @Test
    void theLockstepGenerationStillThrowsThePolicysOwnExceptionAtItsStepAndLeaksNothing() {
        for (Hook hook : Hook.values()) {
            for (boolean measuring : new boolean[] {false, true}) {
                if (hook == Hook.COMPUTED && !measuring) {
                    continue;
                }
                String what = hook + (measuring ? ", staged" : ", fused");
                FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
                ArrayOps ops = model.ops();
                DiffusionSampler sampler = BUGGY.sampler();
                int[] stepsRun = {0};
                try (Generation<ArrayTensor> g = Generation.builder(model, buggy(hook, measuring)).steps(BUGGY.steps())
                        .images(2).guided(true).open()) {
                    assertThatThrownBy(() -> {
                        try (ArrayTensor out = sampler.sample(ops, new ClassifierFreeGuidance<>(ops, (step, x, c) -> {
                            stepsRun[0] = step.step() + 1;
                            return g.predict(step, x, c);
                        }, 1.5, model.unconditional(), 3), new long[] {2, 4, 8, 8}, ClassLabels.of(1, 2),
                                dev.fora.core.sampling.PerImageNoise.seeded(7, 2))) {
                            out.close();
                        }
                    }).as(what).isInstanceOf(thrownBy(hook));
                }
                assertThat(stepsRun[0]).as(what + ": it throws at the step that failed").isEqualTo(badStep(hook) + 1);
                assertThat(ops.liveTensors()).as(what + ": tensors left").isZero();
            }
        }
    }

    @Test
    void aPolicyThrowingInEndStepLeaksNoOutputWhenTheCallerHasNoScope() {
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
        ArrayOps ops = model.ops();
        DiffusionSampler sampler = BUGGY.sampler();
        try (Generation<ArrayTensor> g = Generation.builder(model, buggy(Hook.END_STEP, false)).steps(BUGGY.steps())
                .images(1).open()) {
            ArrayTensor x = ops.fromFloats(new long[] {1, 4, 8, 8}, new float[4 * 64]);
            for (int s = 0; s < BAD_STEP; s++) {
                g.predict(sampler.stepAt(s), x, ClassLabels.of(1)).close();
            }
            long before = ops.liveTensors();
            assertThatThrownBy(() -> g.predict(sampler.stepAt(BAD_STEP), x, ClassLabels.of(1)))
                    .isInstanceOf(IndexOutOfBoundsException.class);
            assertThat(ops.liveTensors()).as("the step's output is released when its policy throws").isEqualTo(before);
            x.close();
        }
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void ddimRunsSteppedTogetherWhileOneFailsOrEndsInTheSamePassEachEqualItselfAlone() {
        // DDIM-10 and DDIM-20 respaced from 1000 share their last step (t = 0); the 20-step run joins so that both
        // reach it in the same pass, next to a NaN run at the same step count, a guided and an unguided run,
        // with and without clipping
        for (boolean clip : new boolean[] {false, true}) {
            ArrayOps ops = new ArrayOps();
            List<DiffusionSampler> samplers = List.of(ddim(10, clip), ddim(20, clip), ddim(10, clip), ddim(10, !clip));
            double[] cfg = {1.5, 1.0, 1.5, 4.0};
            String[] policies = {"fora:3", "taylorseer:2,1", "none", "fora:2"};
            List<float[]> together = new ArrayList<>();
            try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(new SyntheticDiT(ops, 3))) {
                List<Run<ArrayTensor>> runs = new ArrayList<>();
                Run<ArrayTensor> nan = scheduler.newRun(CachePolicies.parse("fora:3"), ddim(10, clip))
                        .conditioning(ClassLabels.of(2)).noise(nanNoise()).open();
                int pass = 0;
                while (runs.size() < samplers.size() || runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                    if (pass == 0) {
                        runs.add(open(scheduler, policies[1], samplers.get(1), cfg[1], 201));
                    }
                    if (pass == 10) {
                        for (int k : new int[] {0, 2, 3}) {
                            runs.add(open(scheduler, policies[k], samplers.get(k), cfg[k], 200 + k));
                        }
                        runs.add(nan);
                    }
                    scheduler.pass(runs);
                    pass++;
                }
                assertThat(nan.state()).isEqualTo(Run.State.FAILED);
                assertThat(nan.failure()).containsInstanceOf(NonFiniteOutputException.class);
                // runs were added in the order 1, 0, 2, 3
                int[] order = {1, 0, 2, 3};
                float[][] byIndex = new float[4][];
                for (int i = 0; i < 4; i++) {
                    assertThat(runs.get(i).state()).isEqualTo(Run.State.DONE);
                    byIndex[order[i]] = ops.toFloats(runs.get(i).latent());
                }
                together.addAll(Arrays.asList(byIndex));
                assertThat(pass).as("all ended in the same pass").isEqualTo(20);
            }
            assertThat(ops.liveTensors()).isZero();
            for (int k = 0; k < samplers.size(); k++) {
                ArrayOps o = new ArrayOps();
                float[] alone;
                try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(new SyntheticDiT(o, 3));
                     Run<ArrayTensor> run = open(scheduler, policies[k], samplers.get(k), cfg[k], 200 + k)) {
                    while (run.state() == Run.State.RUNNING) {
                        scheduler.pass(List.of(run));
                    }
                    alone = o.toFloats(run.latent());
                }
                assertThat(together.get(k)).as("clip %s, run %d", clip, k).containsExactly(alone);
            }
        }
    }

    @Test
    void ddimRunsWithDifferentStepCountsShareTheirRowWiseRule() {
        // the batching in the test above only happens if the rules are equal; otherwise it proves nothing
        DdimSampler ten = ddim(10, false);
        DdimSampler twenty = ddim(20, false);
        assertThat(ten.rowWiseUpdate(ten.stepAt(3)).orElseThrow().rule())
                .isEqualTo(twenty.rowWiseUpdate(twenty.stepAt(12)).orElseThrow().rule());
        assertThat(ten.rowWiseUpdate(ten.stepAt(9)).orElseThrow().coefficients())
                .containsExactly(twenty.rowWiseUpdate(twenty.stepAt(19)).orElseThrow().coefficients());
        assertThat(ten.rowWiseUpdate(ten.stepAt(9)).orElseThrow().rule())
                .isNotEqualTo(ddim(10, true).rowWiseUpdate(ten.stepAt(9)).orElseThrow().rule());
    }

    /** Counts its decider's questions; computes attention every step, the MLP at even steps: never uniform. */
    static final class Counting implements CachePolicy {
        final java.util.Map<Integer, Integer> asked = new java.util.TreeMap<>();

        @Override
        public CacheDecider newDecider(GenerationInfo info) {
            return ctx -> {
                asked.merge(ctx.step().step(), 1, Integer::sum);
                return ctx.branchIndex() == 0 || ctx.step().step() % 2 == 0 ? Decision.COMPUTE : Decision.REUSE;
            };
        }
    }

    @Test
    void aRunDecidedBeforeThePassIsAskedOnceWhenItIsStagedNextToAMeasuringRun() {
        Request measured = new Request("fbcache:0.1", "ddim", 6, 1, 121, 1.5);
        Request mine = new Request("(counting)", "ddim", 6, 2, 122, 1.0);
        Counting counting = new Counting();
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
        ArrayOps ops = model.ops();
        float[] a;
        float[] b;
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
            Run<ArrayTensor> rm = measured.open(scheduler);
            Run<ArrayTensor> rc = scheduler.newRun(counting, mine.sampler()).conditioning(ClassLabels.of(mine.label()))
                    .noise(new SeededGaussianNoise(mine.seed())).open();
            List<Run<ArrayTensor>> runs = List.of(rm, rc);
            while (runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                scheduler.pass(runs);
            }
            a = ops.toFloats(rm.latent());
            b = ops.toFloats(rc.latent());
        }
        int features = model.config().features();
        assertThat(counting.asked).hasSize(6).allSatisfy((step, n) -> assertThat(n).as("step %d", step).isEqualTo(features));
        assertThat(model.full).as("the counting run's even steps compute in full").isEqualTo(3);
        assertThat(model.branchCalls).isNotEmpty();
        assertThat(a).containsExactly(alone(measured));
        float[] alone;
        FusedStepsTest.FusedDiT other = new FusedStepsTest.FusedDiT();
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(other);
             Run<ArrayTensor> run = scheduler.newRun(new Counting(), mine.sampler()).conditioning(ClassLabels.of(mine.label()))
                     .noise(new SeededGaussianNoise(mine.seed())).open()) {
            while (run.state() == Run.State.RUNNING) {
                scheduler.pass(List.of(run));
            }
            alone = other.ops().toFloats(run.latent());
        }
        assertThat(b).containsExactly(alone);
    }

    private static DdimSampler ddim(int steps, boolean clip) {
        return new DdimSampler(DiffusionSchedule.linear(1000).respace(steps), clip);
    }

    private static Run<ArrayTensor> open(StepScheduler<ArrayTensor> scheduler, String policy, DiffusionSampler sampler,
            double cfg, long seed) {
        return scheduler.newRun(CachePolicies.parse(policy), sampler).conditioning(ClassLabels.of((int) (seed % 10)))
                .noise(new SeededGaussianNoise(seed)).guidance(cfg, 3).open();
    }

    /** A NaN x_T: the run's first output is NaN. */
    private static NoiseSource nanNoise() {
        return shape -> {
            float[] v = new float[NoiseSource.count(shape)];
            Arrays.fill(v, Float.NaN);
            return v;
        };
    }
}
