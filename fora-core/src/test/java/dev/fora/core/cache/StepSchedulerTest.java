package dev.fora.core.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.fora.core.engine.Generation;
import dev.fora.core.engine.Run;
import dev.fora.core.engine.StepScheduler;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.DiTModel;
import dev.fora.core.model.ForwardingDiT;
import dev.fora.core.model.FusedSteps;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.DdimSampler;
import dev.fora.core.sampling.DdpmSampler;
import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.NoiseSource;
import dev.fora.core.sampling.NonFiniteOutputException;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.testing.SyntheticDiT;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * Runs at their own steps in one pass: each equals the same run alone, bit for bit, whatever
 * joins, leaves or shares its passes; uniform passes take the fused call.
 */
class StepSchedulerTest {

    /** What one image is: the same request given to any scheduler. */
    record Request(String policy, String samplerName, int steps, int label, long seed, double cfg) {

        DiffusionSampler sampler() {
            DiffusionSchedule s = DiffusionSchedule.linear(1000).respace(steps);
            return samplerName.equals("ddpm") ? new DdpmSampler(s) : new DdimSampler(s);
        }

        Run<ArrayTensor> open(StepScheduler<ArrayTensor> scheduler) {
            return scheduler.newRun(CachePolicies.parse(policy), sampler()).conditioning(ClassLabels.of(label))
                    .noise(new SeededGaussianNoise(seed)).guidance(cfg, 3).open();
        }
    }

    private static final List<Request> MIXED = List.of(
            new Request("fora:3", "ddim", 12, 1, 11, 1.5),
            new Request("teacache:0.2", "ddpm", 9, 4, 12, 4.0),
            new Request("taylorseer:3,2", "ddim", 15, 7, 13, 1.0),
            new Request("fbcache:0.1", "ddim", 10, 2, 14, 1.5),
            new Request("cooldown:2,hicache:4,2", "ddpm", 11, 5, 15, 1.5));

    /** The request run alone, start to end. */
    private static float[] alone(Function<ArrayOps, DiTModel<ArrayTensor>> models, Request r) {
        DiTModel<ArrayTensor> model = models.apply(new ArrayOps());
        ArrayOps ops = (ArrayOps) model.ops();
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model);
             Run<ArrayTensor> run = r.open(scheduler)) {
            while (run.state() == Run.State.RUNNING) {
                scheduler.pass(List.of(run));
            }
            assertThat(run.state()).isEqualTo(Run.State.DONE);
            return ops.toFloats(run.latent());
        }
    }

    @Test
    void runsAtDifferentStepsInOnePassEachEqualTheSameRunAlone() {
        Function<ArrayOps, DiTModel<ArrayTensor>> models = ops -> new SyntheticDiT(ops, 3);
        ArrayOps ops = new ArrayOps();
        List<float[]> together = new ArrayList<>();
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(models.apply(ops))) {
            List<Run<ArrayTensor>> runs = new ArrayList<>();
            int passes = 0;
            // request k joins before pass 2k: every pass mixes runs at different steps
            while (runs.size() < MIXED.size() || runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                if (runs.size() < MIXED.size() && passes == 2 * runs.size()) {
                    runs.add(MIXED.get(runs.size()).open(scheduler));
                }
                scheduler.pass(runs);
                passes++;
            }
            for (Run<ArrayTensor> r : runs) {
                assertThat(r.state()).isEqualTo(Run.State.DONE);
                assertThat(r.cacheBytes()).as("a finished run leaves its cache at once").isZero();
                together.add(ops.toFloats(r.latent()));
            }
        }
        assertThat(ops.liveTensors()).isZero();
        for (int i = 0; i < MIXED.size(); i++) {
            assertThat(together.get(i)).as(MIXED.get(i).toString()).containsExactly(alone(models, MIXED.get(i)));
        }
    }

    @Test
    void aRunAloneEqualsTheLockstepGenerationOfOneImage() {
        Request r = new Request("fora:3", "ddpm", 10, 6, 21, 1.5);
        float[] scheduled = alone(ops -> new SyntheticDiT(ops, 3), r);
        ArrayOps ops = new ArrayOps();
        SyntheticDiT model = new SyntheticDiT(ops, 3);
        DiffusionSampler sampler = r.sampler();
        try (Generation<ArrayTensor> g = Generation.builder(model, CachePolicies.parse(r.policy())).steps(r.steps()).images(1)
                .guided(true).open();
             ArrayTensor out = sampler.sample(ops, new ClassifierFreeGuidance<>(ops, g, r.cfg(), model.unconditional(), 3),
                     new long[] {1, 4, 8, 8}, ClassLabels.of(r.label()), new SeededGaussianNoise(r.seed()))) {
            assertThat(ops.toFloats(out)).containsExactly(scheduled);
        }
    }

    @Test
    void aRunLeavingMidwayFreesItsCacheAndChangesNoOtherRun() {
        Function<ArrayOps, DiTModel<ArrayTensor>> models = ops -> new SyntheticDiT(ops, 3);
        ArrayOps ops = new ArrayOps();
        Request stays = new Request("taylorseer:3,2", "ddim", 12, 3, 31, 1.5);
        Request leaves = new Request("fora:2", "ddpm", 12, 8, 32, 1.5);
        float[] result;
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(models.apply(ops))) {
            Run<ArrayTensor> a = stays.open(scheduler);
            Run<ArrayTensor> b = leaves.open(scheduler);
            for (int i = 0; i < 5; i++) {
                scheduler.pass(List.of(a, b));
            }
            long both = scheduler.cacheBytes();
            long mine = b.cacheBytes();
            assertThat(mine).isPositive();
            b.close();
            scheduler.pass(List.of(a)); // rows a no longer shares are compacted before anything new is counted
            assertThat(scheduler.cacheBytes()).isLessThanOrEqualTo(both - mine + a.cacheBytes());
            assertThatThrownBy(() -> scheduler.pass(List.of(a, b))).isInstanceOf(IllegalArgumentException.class);
            while (a.state() == Run.State.RUNNING) {
                scheduler.pass(List.of(a));
            }
            result = ops.toFloats(a.latent());
        }
        assertThat(ops.liveTensors()).isZero();
        assertThat(result).containsExactly(alone(models, stays));
    }

    @Test
    void aRunWhoseOutputIsNotFiniteFailsAlone() {
        ArrayOps ops = new ArrayOps();
        Request fine = new Request("fora:3", "ddim", 6, 1, 41, 1.5);
        float[] result;
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(new SyntheticDiT(ops, 3))) {
            Run<ArrayTensor> a = fine.open(scheduler);
            Run<ArrayTensor> nan = scheduler.newRun(CachePolicies.parse("fora:3"), fine.sampler()).conditioning(ClassLabels.of(2))
                    .noise(shape -> {
                        float[] v = new float[NoiseSource.count(shape)];
                        java.util.Arrays.fill(v, Float.NaN);
                        return v;
                    }).open();
            while (a.state() == Run.State.RUNNING) {
                scheduler.pass(List.of(a, nan));
            }
            assertThat(nan.state()).isEqualTo(Run.State.FAILED);
            assertThat(nan.failure()).containsInstanceOf(NonFiniteOutputException.class);
            assertThat(nan.cacheBytes()).isZero();
            result = ops.toFloats(a.latent());
        }
        assertThat(result).containsExactly(alone(o -> new SyntheticDiT(o, 3), fine));
    }

    /** A user's policy with a bug: it throws at step 2, at block 1 (mid-pass when the pass is staged). */
    private static CachePolicy throwingAtStep2(boolean measuring) {
        return new CachePolicy() {
            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                return ctx -> {
                    if (ctx.step().step() == 2 && ctx.block() == 1) {
                        throw new IllegalStateException("a bug in the policy");
                    }
                    return ctx.step().step() % 2 == 0 ? Decision.COMPUTE : Decision.REUSE;
                };
            }

            @Override
            public java.util.Set<Measurement> measurements(GenerationInfo info) {
                return measuring ? java.util.Set.of(Measurement.modulatedInputChange(0)) : java.util.Set.of();
            }
        };
    }

    @Test
    void aRunWhosePolicyThrowsFailsAloneWhetherThePassIsFusedOrStaged() {
        for (boolean measuring : new boolean[] {false, true}) {
            List<Request> others = List.of(new Request("fora:3", "ddim", 6, 1, 91, 1.5),
                    new Request(measuring ? "fbcache:0.1" : "taylorseer:3,2", "ddpm", 7, 3, 92, 1.0));
            FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
            ArrayOps ops = model.ops();
            List<float[]> results = new ArrayList<>();
            try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
                List<Run<ArrayTensor>> runs = new ArrayList<>();
                for (Request r : others) {
                    runs.add(r.open(scheduler));
                }
                Run<ArrayTensor> buggy = scheduler.newRun(throwingAtStep2(measuring), others.get(0).sampler())
                        .conditioning(ClassLabels.of(5)).noise(new SeededGaussianNoise(93)).guidance(1.5, 3).open();
                runs.add(1, buggy);
                while (runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                    scheduler.pass(runs);
                }
                assertThat(buggy.state()).as("measuring %s", measuring).isEqualTo(Run.State.FAILED);
                assertThat(buggy.failure()).get().extracting(Throwable::getMessage).isEqualTo("a bug in the policy");
                assertThat(buggy.nextStep()).isEqualTo(2);
                assertThat(buggy.cacheBytes()).isZero();
                for (int k : new int[] {0, 2}) {
                    assertThat(runs.get(k).state()).isEqualTo(Run.State.DONE);
                    results.add(ops.toFloats(runs.get(k).latent()));
                }
            }
            assertThat(results.get(0)).containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), others.get(0)));
            assertThat(results.get(1)).containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), others.get(1)));
        }
    }

    @Test
    void aUniformPassTakesTheFusedCallWhateverStepsItsRunsAreAt() {
        // fora:3 computes at step 0 and where the loop index is a multiple of 3: a 12-step and a 9-step run
        // (loop indices 11 and 8 at the first pass, other timesteps, other samplers) compute in the same passes
        Request first = new Request("fora:3", "ddim", 12, 1, 51, 1.5);
        Request second = new Request("fora:3", "ddpm", 9, 2, 52, 1.5);
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
        ArrayOps ops = model.ops();
        float[] a;
        float[] b;
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
            Run<ArrayTensor> ra = first.open(scheduler);
            List<Run<ArrayTensor>> runs = new ArrayList<>(List.of(ra, second.open(scheduler)));
            while (runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                scheduler.pass(runs);
            }
            a = ops.toFloats(ra.latent());
            b = ops.toFloats(runs.get(1).latent());
        }
        assertThat(model.branchCalls).as("every pass was uniform").isEmpty();
        assertThat(model.full).as("passes 0, 2, 5, 8 and 11").isEqualTo(5);
        assertThat(model.cached).isEqualTo(7);
        assertThat(a).containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), first));
        assertThat(b).containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), second));
    }
    @Test
    void runsWhoseDecisionsDifferShareOneFusedCallPerKindOfDecision() {
        // the 9-step run joins at pass 3: it computes at passes 3, 5, 8, 11, the 12-step one at 0, 2, 5, 8, 11
        Request first = new Request("fora:3", "ddim", 12, 1, 61, 1.5);
        Request second = new Request("fora:3", "ddpm", 9, 2, 62, 1.5);
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
        ArrayOps ops = model.ops();
        float[] a;
        float[] b;
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
            Run<ArrayTensor> ra = first.open(scheduler);
            List<Run<ArrayTensor>> runs = new ArrayList<>(List.of(ra));
            for (int i = 0; i < 3; i++) {
                scheduler.pass(runs);
            }
            runs.add(second.open(scheduler));
            while (runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                scheduler.pass(runs);
            }
            a = ops.toFloats(ra.latent());
            b = ops.toFloats(runs.get(1).latent());
        }
        assertThat(model.branchCalls).as("no pass ran the stages").isEmpty();
        assertThat(model.full).as("passes 0, 2, 3, 5, 8, 11").isEqualTo(6);
        assertThat(model.cached).as("passes 1, 3, 4, 6, 7, 9, 10").isEqualTo(7);
        assertThat(a).containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), first));
        assertThat(b).containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), second));
    }

    @Test
    void runsUpdatedTogetherKeepOneBatchOfLatentsThatTheNextPassTakesWhole() throws Exception {
        FusedStepsTest.FusedDiT inner = new FusedStepsTest.FusedDiT();
        Map<String, Integer> calls = new HashMap<>();
        @SuppressWarnings("unchecked")
        TensorOps<ArrayTensor> counting = (TensorOps<ArrayTensor>) Proxy.newProxyInstance(TensorOps.class.getClassLoader(),
                new Class<?>[] {TensorOps.class}, (proxy, method, args) -> {
                    calls.merge(method.getName(), 1, Integer::sum);
                    try {
                        return method.invoke(inner.ops(), args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        DiTModel<ArrayTensor> model = new ForwardingDiT<>(inner) {
            @Override
            public TensorOps<ArrayTensor> ops() {
                return counting;
            }

            @Override
            public Optional<FusedSteps<ArrayTensor>> fusedSteps() {
                return inner.fusedSteps();
            }
        };
        List<Request> requests = List.of(new Request("fora:3", "ddim", 10, 1, 41, 1.5),
                new Request("fora:3", "ddim", 10, 4, 42, 1.5), new Request("fora:3", "ddim", 10, 7, 43, 1.5));
        List<float[]> together = new ArrayList<>();
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
            List<Run<ArrayTensor>> runs = new ArrayList<>();
            for (Request r : requests) {
                runs.add(r.open(scheduler));
            }
            while (runs.get(0).state() == Run.State.RUNNING) {
                scheduler.pass(runs);
            }
            // the fresh latents are joined once; every later pass takes the last update's batch as it is
            assertThat(calls.get("concatBatch")).isEqualTo(1);
            for (Run<ArrayTensor> r : runs) {
                together.add(inner.ops().toFloats(r.latent()));
            }
        }
        for (int i = 0; i < requests.size(); i++) {
            assertThat(together.get(i)).containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), requests.get(i)));
        }
    }

    @Test
    void aModelThatSplitsRunsAComputingRunBesideReusingAndForecastingRunsInOneCall() {
        // as above with a third run forecasting: at pass 3 the joining run computes while the others reuse
        // or forecast, which a splitting model takes in one call
        Request first = new Request("fora:3", "ddim", 12, 1, 61, 1.5);
        Request third = new Request("taylorseer:3,2", "ddim", 12, 4, 63, 1.5);
        Request second = new Request("fora:3", "ddpm", 9, 2, 62, 1.5);
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT(true);
        ArrayOps ops = model.ops();
        List<float[]> results = new ArrayList<>();
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
            List<Run<ArrayTensor>> runs = new ArrayList<>(List.of(first.open(scheduler), third.open(scheduler)));
            for (int i = 0; i < 3; i++) {
                scheduler.pass(runs);
            }
            runs.add(1, second.open(scheduler)); // listed between the others: the split call puts its rows first
            while (runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                scheduler.pass(runs);
            }
            for (Run<ArrayTensor> r : runs) {
                results.add(ops.toFloats(r.latent()));
            }
        }
        assertThat(model.branchCalls).as("no pass ran the stages").isEmpty();
        assertThat(model.split).as("pass 3").isEqualTo(1);
        assertThat(model.full).as("passes 0, 2, 5, 8, 11").isEqualTo(5);
        assertThat(model.cached).as("passes 1, 4, 6, 7, 9, 10").isEqualTo(6);
        assertThat(results.get(0)).containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), first));
        assertThat(results.get(1)).containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), second));
        assertThat(results.get(2)).containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), third));
    }

    @Test
    void aRunStartedInPhaseWaitsSoThatItsFullStepsShareTheOthersCalls() {
        startedInPhase(false);
    }

    @Test
    void aRunStartedInPhaseLinesUpWithTheRunsGoingWhereverItIsListed() {
        startedInPhase(true);
    }

    private void startedInPhase(boolean listedFirst) {
        // the first run computes at passes 0, 2, 5, 8, 11; a second 12-step run given from pass 1 would compute at
        // 1, 3, 6, 9, 12 (none shared). Waiting two passes it computes at 3, 5, 8, 11, 14: only 3 and 14 alone
        Request first = new Request("fora:3", "ddim", 12, 1, 71, 1.5);
        Request second = new Request("fora:3", "ddpm", 12, 2, 72, 1.5);
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
        ArrayOps ops = model.ops();
        float[] a;
        float[] b;
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
            Run<ArrayTensor> ra = first.open(scheduler);
            List<Run<ArrayTensor>> runs = new ArrayList<>(List.of(ra));
            scheduler.pass(runs);
            Run<ArrayTensor> rb = scheduler.newRun(CachePolicies.parse(second.policy()), second.sampler())
                    .conditioning(ClassLabels.of(second.label())).noise(new SeededGaussianNoise(second.seed()))
                    .guidance(second.cfg(), 3).startInPhase(3).open();
            runs.add(listedFirst ? 0 : 1, rb);
            scheduler.pass(runs);
            scheduler.pass(runs);
            assertThat(rb.nextStep()).as("it waited two passes").isZero();
            scheduler.pass(runs);
            assertThat(rb.nextStep()).isEqualTo(1);
            while (runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                scheduler.pass(runs);
            }
            a = ops.toFloats(ra.latent());
            b = ops.toFloats(rb.latent());
        }
        assertThat(model.branchCalls).isEmpty();
        assertThat(model.full).as("the first run's 5, and the second's at passes 3 and 14").isEqualTo(7);
        assertThat(model.cached).as("passes 1, 3, 4, 6, 7, 9, 10, 12, 13").isEqualTo(9);
        assertThat(a).containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), first));
        assertThat(b).containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), second));
    }

    @Test
    void runsThatAllWaitStartAtOnce() {
        Request r = new Request("fora:3", "ddim", 6, 1, 81, 1.0);
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT();
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model);
             Run<ArrayTensor> run = scheduler.newRun(CachePolicies.parse(r.policy()), r.sampler())
                     .conditioning(ClassLabels.of(r.label())).noise(new SeededGaussianNoise(r.seed())).startInPhase(5).open()) {
            scheduler.pass(List.of(run));
            assertThat(run.nextStep()).as("nothing to line up with: it starts at once").isEqualTo(1);
        }
    }

    @Test
    void ddimRunsAtTheSameStepAreSteppedTogetherAndEachStillEqualsItselfAlone() {
        List<Request> requests = List.of(new Request("fora:3", "ddim", 8, 1, 101, 1.5),
                new Request("taylorseer:3,2", "ddim", 8, 2, 102, 1.5), new Request("none", "ddim", 8, 3, 103, 1.0),
                new Request("fora:2", "ddim", 6, 4, 104, 1.5));
        ArrayOps ops = new ArrayOps();
        List<float[]> together = new ArrayList<>();
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(new SyntheticDiT(ops, 3))) {
            List<Run<ArrayTensor>> runs = new ArrayList<>();
            for (Request r : requests) {
                runs.add(r.open(scheduler));
            }
            while (runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                scheduler.pass(runs);
            }
            for (Run<ArrayTensor> r : runs) {
                together.add(ops.toFloats(r.latent()));
            }
        }
        for (int k = 0; k < requests.size(); k++) {
            assertThat(together.get(k)).as(requests.get(k).toString())
                    .containsExactly(alone(o -> new SyntheticDiT(o, 3), requests.get(k)));
        }
    }

    @Test
    void aRunWhosePolicyMeasuresIsStagedWhileTheOthersStillTakeFusedCalls() {
        Request measured = new Request("fbcache:0.1", "ddim", 9, 1, 111, 1.5);
        Request periodic = new Request("fora:3", "ddim", 9, 2, 112, 1.5);
        for (boolean spans : new boolean[] {false, true}) {
            FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT(false, false, spans);
            ArrayOps ops = model.ops();
            float[] a;
            float[] b;
            try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
                List<Run<ArrayTensor>> runs = List.of(measured.open(scheduler), periodic.open(scheduler));
                while (runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                    scheduler.pass(runs);
                }
                a = ops.toFloats(runs.get(0).latent());
                b = ops.toFloats(runs.get(1).latent());
            }
            // fora:3 over 9 steps: full at steps 0, 2, 5, 8 and cached at the other 5, each a fused call of its own rows
            assertThat(model.full).isEqualTo(4);
            assertThat(model.cached).isEqualTo(5);
            if (spans) {
                assertThat(model.heads).as("the fbcache run took a head call per step").isEqualTo(9);
                assertThat(model.branchCalls).isEmpty();
            } else {
                assertThat(model.branchCalls).as("the fbcache run went through the stages").isNotEmpty();
            }
            assertThat(a).containsExactly(alone(o -> new FusedStepsTest.FusedDiT(false, false, spans), measured));
            assertThat(b).containsExactly(alone(o -> new FusedStepsTest.FusedDiT(false, false, spans), periodic));
            assertThat(a).as("the same as the stages").containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), measured));
        }
    }

    @Test
    void firstBlockCacheTailsRideAlongTheOtherRunsCallAndEveryImageEqualsItselfAlone() {
        List<Request> requests = List.of(new Request("fbcache:0.1", "ddim", 9, 1, 141, 1.5),
                new Request("fora:3", "ddim", 9, 2, 142, 1.5),
                new Request("fbcache:1", "ddpm", 12, 3, 143, 1.0),
                new Request("taylorseer:3,2", "ddim", 12, 4, 144, 1.5));
        FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT(true, false, true);
        ArrayOps ops = model.ops();
        List<float[]> together = new ArrayList<>();
        int passes = 0;
        try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
            List<Run<ArrayTensor>> runs = new ArrayList<>();
            requests.forEach(r -> runs.add(r.open(scheduler)));
            while (runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                scheduler.pass(runs);
                passes++;
            }
            runs.forEach(r -> together.add(ops.toFloats(r.latent())));
        }
        assertThat(model.heads).as("a head call per pass").isEqualTo(passes);
        assertThat(model.carried).as("passes whose tails rode along the others' call").isEqualTo(passes);
        assertThat(model.tails).as("no tail call of its own").isZero();
        assertThat(model.branchCalls).isEmpty();
        for (int i = 0; i < requests.size(); i++) {
            Request r = requests.get(i);
            assertThat(together.get(i)).as(r.policy()).containsExactly(alone(o -> new FusedStepsTest.FusedDiT(true, false, true), r));
            assertThat(together.get(i)).as(r.policy() + ", the stages").containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), r));
        }
    }

    @Test
    void aHeadTailPassKeepsResidualsOnlyForTheDecidersThatDeclaredTheRange() {
        // measures block 0's change like fbcache, but keeps nothing: it computes every step
        CachePolicy measuresOnly = new CachePolicy() {
            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                return ctx -> Decision.COMPUTE;
            }

            @Override
            public java.util.Set<Measurement> measurements(GenerationInfo info) {
                return java.util.Set.of(Measurement.residualChange(0));
            }

            @Override
            public int historyLength() {
                return 0;
            }
        };
        Request fbcache = new Request("fbcache:1", "ddim", 10, 1, 151, 1.5);
        long[] peak = new long[2];
        List<float[]> latents = new ArrayList<>();
        for (boolean spans : new boolean[] {false, true}) {
            FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT(false, false, spans);
            try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
                List<Run<ArrayTensor>> runs = List.of(fbcache.open(scheduler), openWith(scheduler, measuresOnly));
                while (runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                    scheduler.pass(runs);
                }
                peak[spans ? 1 : 0] = scheduler.peakCacheBytes();
                runs.forEach(r -> latents.add(model.ops().toFloats(r.latent())));
            }
            assertThat(model.heads).isEqualTo(spans ? 10 : 0);
        }
        assertThat(peak[1]).as("the same bytes as the stages").isEqualTo(peak[0]);
        assertThat(latents.get(2)).containsExactly(latents.get(0));
        assertThat(latents.get(3)).containsExactly(latents.get(1));
    }

    @Test
    void runsThatReuseOrForecastWithTheirOwnCoefficientsShareOneCachedCall() {
        // fora:3 reuses, each taylorseer run forecasts with coefficients of its own gap since its last full step
        // (the second one starts a pass later and is not started in phase); the values are combined from the
        // stacks their full steps stored, into one cached call, whether the model masks or not
        List<Request> requests = List.of(new Request("fora:3", "ddim", 12, 1, 121, 1.5),
                new Request("taylorseer:3,2", "ddim", 12, 2, 122, 1.5),
                new Request("taylorseer:3,2", "ddim", 12, 3, 123, 1.0));
        for (boolean masks : new boolean[] {false, true}) {
            FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT(false, masks);
            ArrayOps ops = model.ops();
            List<Run<ArrayTensor>> runs = new ArrayList<>();
            int mergedPasses = 0;
            try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
                runs.add(requests.get(0).open(scheduler));
                runs.add(requests.get(1).open(scheduler));
                for (int pass = 0; runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING); pass++) {
                    if (pass == 1) {
                        runs.add(requests.get(2).open(scheduler));
                    }
                    int cached = model.cached + model.masked;
                    int full = model.full;
                    scheduler.pass(runs);
                    assertThat(model.cached + model.masked - cached).as("cached calls in pass " + pass).isLessThanOrEqualTo(1);
                    mergedPasses += model.cached + model.masked > cached && model.full == full ? 1 : 0;
                }
                assertThat(model.branchCalls).as("no pass ran the stages").isEmpty();
                assertThat(mergedPasses).as("passes where every run reused or forecast").isGreaterThan(2);
                assertThat(model.cached).as("merged passes' calls").isGreaterThanOrEqualTo(mergedPasses);
                assertThat(model.masked).isZero();
                for (int i = 0; i < runs.size(); i++) {
                    // the forecast is combined before the call instead of inside it: the same sum, in another order
                    assertThat(ops.toFloats(runs.get(i).latent())).as(requests.get(i).policy())
                            .containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), requests.get(i)), within(1e-5f));
                }
            }
        }
    }

    @Test
    void aRunWhoseValuesAreNotInStacksStillSharesTheCachedCall() {
        // full at steps 0, 4, 8, block 0 alone at 1, 5, 9 (a masked call, or the stages): its values then leave the
        // stacks, and the passes where it reuses beside a forecasting run (taylorseer: full at 0, 4, 8) combine
        // every feature one by one
        CachePolicy blockZeroAfterFull = info -> ctx -> ctx.step().step() % 4 == 0
                || (ctx.step().step() % 4 == 1 && ctx.block() == 0) ? Decision.COMPUTE : Decision.REUSE;
        Request forecasting = new Request("taylorseer:4,1", "ddim", 10, 2, 131, 1.5);
        for (boolean masks : new boolean[] {false, true}) {
            FusedStepsTest.FusedDiT model = new FusedStepsTest.FusedDiT(false, masks);
            ArrayOps ops = model.ops();
            float[] reusing;
            float[] forecast;
            try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(model)) {
                List<Run<ArrayTensor>> runs = List.of(openWith(scheduler, blockZeroAfterFull), forecasting.open(scheduler));
                while (runs.stream().anyMatch(r -> r.state() == Run.State.RUNNING)) {
                    scheduler.pass(runs);
                }
                reusing = ops.toFloats(runs.get(0).latent());
                forecast = ops.toFloats(runs.get(1).latent());
            }
            // steps 6 and 7 combine feature by feature: a masked call where the model masks (besides those of
            // steps 1, 5 and 9), else a cached one
            assertThat(masks ? model.masked : model.cached).as("masks " + masks).isGreaterThanOrEqualTo(masks ? 5 : 2);
            FusedStepsTest.FusedDiT own = new FusedStepsTest.FusedDiT(false, masks);
            float[] aloneReusing;
            try (StepScheduler<ArrayTensor> scheduler = new StepScheduler<>(own);
                 Run<ArrayTensor> run = openWith(scheduler, blockZeroAfterFull)) {
                while (run.state() == Run.State.RUNNING) {
                    scheduler.pass(List.of(run));
                }
                aloneReusing = own.ops().toFloats(run.latent());
            }
            assertThat(reusing).as("masks " + masks).containsExactly(aloneReusing, within(1e-5f));
            assertThat(forecast).as("masks " + masks)
                    .containsExactly(alone(o -> new FusedStepsTest.FusedDiT(), forecasting), within(1e-5f));
        }
    }

    private static Run<ArrayTensor> openWith(StepScheduler<ArrayTensor> scheduler, CachePolicy policy) {
        return scheduler.newRun(policy, new DdimSampler(DiffusionSchedule.linear(1000).respace(10)))
                .conditioning(ClassLabels.of(1)).noise(new SeededGaussianNoise(132)).guidance(1.5, 3).open();
    }
}
