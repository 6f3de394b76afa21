package dev.fora.core.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fora.core.testing.HarnessReport;
import dev.fora.core.testing.PolicyHarness;
import dev.fora.core.testing.SyntheticDiT;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SchedulePolicyTest {

    private static final int STEPS = 30;
    private static final int DEPTH = SyntheticDiT.SMALL.depth();
    private static final CacheSchedule.Target TARGET = new CacheSchedule.Target("sha-of-model", "ddim", STEPS);

    /** Block b's attention computes every (b + 2)-th step, its MLP every 3rd. */
    private static int[][][] perBlock(int blocks) {
        int[][][] steps = new int[blocks][2][];
        for (int b = 0; b < blocks; b++) {
            steps[b][0] = every(b + 2);
            steps[b][1] = every(3);
        }
        return steps;
    }

    private static int[] every(int n) {
        return java.util.stream.IntStream.range(0, STEPS).filter(s -> s % n == 0).toArray();
    }

    private static CacheSchedule schedule(int[][][] steps, CacheSchedule.Forecast forecast) {
        return new CacheSchedule(TARGET, List.of("attn", "mlp"), steps, forecast, false);
    }

    private static PolicyHarness harness(int steps) {
        return PolicyHarness.builder().steps(steps).batch(2).build();
    }

    @Test
    void everyBlockAndBranchComputesExactlyItsListedSteps() {
        HarnessReport r = harness(STEPS).run(new SchedulePolicy(schedule(perBlock(DEPTH), CacheSchedule.Forecast.REUSE)));
        for (int b = 0; b < DEPTH; b++) {
            int attn = 0;
            int mlp = 0;
            for (int s = 0; s < STEPS; s++) {
                for (int image = 0; image < 2; image++) {
                    Decision.Kind a = r.decision(s, image, b, "attn");
                    Decision.Kind m = r.decision(s, image, b, "mlp");
                    assertThat(a).isEqualTo(s % (b + 2) == 0 ? Decision.Kind.COMPUTE : Decision.Kind.REUSE);
                    assertThat(m).isEqualTo(s % 3 == 0 ? Decision.Kind.COMPUTE : Decision.Kind.REUSE);
                    attn += a == Decision.Kind.COMPUTE ? 1 : 0;
                    mlp += m == Decision.Kind.COMPUTE ? 1 : 0;
                }
            }
            assertThat(attn).as("block %d attn computes", b).isEqualTo(2 * every(b + 2).length);
            assertThat(mlp).as("block %d mlp computes", b).isEqualTo(2 * every(3).length);
        }
        assertThat(r.leakedTensors()).isZero();
    }

    @Test
    void theFlopBoundOfTheScheduleIsTheOneTheGenerationCounts() {
        CacheSchedule s = schedule(perBlock(DEPTH), CacheSchedule.Forecast.REUSE);
        HarnessReport r = harness(STEPS).run(new SchedulePolicy(s));
        assertThat(s.flopSpeedup(SyntheticDiT.SMALL)).isCloseTo(r.stats().flopSpeedup(), org.assertj.core.data.Offset.offset(1e-9));
    }

    @Test
    void forecastsUseTaylorSeerAndHiCacheCoefficientsOverTheScheduledGaps() {
        int[][][] steps = perBlock(Contexts.CONFIG.depth());
        CacheDecider taylor = new SchedulePolicy(schedule(steps, CacheSchedule.Forecast.taylorSeer(2)))
                .newDecider(new GenerationInfo(STEPS, Contexts.CONFIG, 1, false, 1));
        Decision d = Contexts.ask(taylor, 7, STEPS, 0, 0, 6, 4, 2);
        assertThat(d.kind()).isEqualTo(Decision.Kind.FORECAST);
        assertThat(d.coefficients()).containsExactly(TaylorSeerPolicy.coefficients(new int[] {6, 4, 2}, 7, 2));
        // unequal gaps: second differences over the actual spacing; at s = 9
        assertThat(Contexts.ask(taylor, 9, STEPS, 0, 0, 6, 4, 1).coefficients())
                .containsExactly(TaylorSeerPolicy.coefficients(new int[] {6, 4, 1}, 9, 2));
        assertThat(Contexts.ask(taylor, 1, STEPS, 0, 0, 0).kind()).isEqualTo(Decision.Kind.REUSE);
        assertThat(Contexts.ask(taylor, 6, STEPS, 0, 0, 4, 2).kind()).isEqualTo(Decision.Kind.COMPUTE);

        CacheDecider hi = new SchedulePolicy(schedule(steps, CacheSchedule.Forecast.hiCache(3, 0.75)))
                .newDecider(new GenerationInfo(STEPS, Contexts.CONFIG, 1, false, 1));
        assertThat(Contexts.ask(hi, 5, STEPS, 1, 1, 3, 0).coefficients())
                .containsExactly(HiCachePolicy.coefficients(new int[] {3, 0}, 5, 3, 0.75));
        assertThat(new SchedulePolicy(schedule(steps, CacheSchedule.Forecast.hiCache(3, 0.75))).historyLength()).isEqualTo(4);
    }

    @Test
    void aUniformScheduleWithTaylorSeerForecastsIsTaylorSeer() {
        int[][][] steps = new int[DEPTH][2][];
        int[] fora = java.util.stream.IntStream.range(0, STEPS).filter(s -> s == 0 || (STEPS - 1 - s) % 4 == 0).toArray();
        for (int[][] block : steps) {
            block[0] = fora;
            block[1] = fora;
        }
        PolicyHarness h = harness(STEPS);
        HarnessReport scheduled = h.run(new SchedulePolicy(schedule(steps, CacheSchedule.Forecast.taylorSeer(2))));
        HarnessReport builtIn = h.run(new TaylorSeerPolicy(4, 2));
        assertThat(scheduled.relativeL1Error()).isPositive();
        assertThat(scheduled.output()).containsExactly(builtIn.output());
    }

    @Test
    void composesWithWarmupCooldownAndSeparateGuidanceHalves() {
        CacheSchedule sparse = new CacheSchedule(TARGET, List.of("attn", "mlp"), everyBlock(new int[] {0, 15}),
                CacheSchedule.Forecast.REUSE, true);
        CachePolicy p = WarmupCooldown.warmup(3, WarmupCooldown.cooldown(2, new SchedulePolicy(sparse, "tuned.json", Set.of())));
        assertThat(p.spec()).contains("warmup:3,cooldown:2,schedule:tuned.json");
        assertThat(p.separateGuidanceHalves()).isTrue();
        assertThat(SchedulePolicy.in(p)).isPresent();
        HarnessReport r = harness(STEPS).run(p);
        for (int s = 0; s < STEPS; s++) {
            boolean computes = s < 3 || s >= STEPS - 2 || s == 15;
            assertThat(r.stats().isFullStep(s)).as("step %d", s).isEqualTo(computes);
            assertThat(r.stats().isCachedStep(s)).as("step %d", s).isEqualTo(!computes);
        }
    }

    private static int[][][] everyBlock(int[] computeSteps) {
        int[][][] steps = new int[DEPTH][2][];
        for (int[][] block : steps) {
            block[0] = computeSteps;
            block[1] = computeSteps;
        }
        return steps;
    }

    @Test
    void anotherStepCountIsATypedErrorUnlessAllowed() {
        SchedulePolicy strict = new SchedulePolicy(schedule(perBlock(DEPTH), CacheSchedule.Forecast.REUSE), "s.json", Set.of());
        assertThatThrownBy(() -> harness(40).run(strict)).isInstanceOfSatisfying(ScheduleException.class,
                e -> assertThat(e.reason()).isEqualTo(ScheduleException.Reason.WRONG_STEPS)).hasMessageContaining("30 steps, not 40")
                .hasMessageContaining("schedule:s.json,allow=steps");
        SchedulePolicy allowed = new SchedulePolicy(strict.schedule(), "s.json", Set.of(SchedulePolicy.Allow.STEPS));
        assertThat(allowed.spec()).contains("schedule:s.json,allow=steps");
        HarnessReport r = harness(59).run(allowed);
        // step s of 30 maps to 2s of 59: block 0's MLP (every 3rd of 30) computes at every 6th of 59
        for (int s = 0; s < 59; s++) {
            assertThat(r.decision(s, 0, 0, "mlp")).isEqualTo(s % 6 == 0 ? Decision.Kind.COMPUTE : Decision.Kind.REUSE);
        }
    }

    @Test
    void anotherModelOrSamplerIsATypedErrorUnlessAllowed() {
        CacheSchedule s = schedule(perBlock(DEPTH), CacheSchedule.Forecast.REUSE);
        SchedulePolicy strict = new SchedulePolicy(s, "s.json", Set.of());
        strict.checkTarget("sha-of-model", "ddim");
        assertThatThrownBy(() -> strict.checkTarget("other", "ddim")).isInstanceOfSatisfying(ScheduleException.class,
                e -> assertThat(e.reason()).isEqualTo(ScheduleException.Reason.WRONG_MODEL)).hasMessageContaining("sha-of-model")
                .hasMessageContaining("other");
        assertThatThrownBy(() -> strict.checkTarget("sha-of-model", "ddpm")).isInstanceOfSatisfying(ScheduleException.class,
                e -> assertThat(e.reason()).isEqualTo(ScheduleException.Reason.WRONG_SAMPLER));
        new SchedulePolicy(s, "s.json", Set.of(SchedulePolicy.Allow.MODEL, SchedulePolicy.Allow.SAMPLER)).checkTarget("other", "ddpm");
    }

    @Test
    void aScheduleLeavingOutABlockOrBranchIsATypedErrorNotComputeAlways() {
        SchedulePolicy shallower = new SchedulePolicy(schedule(perBlock(DEPTH - 1), CacheSchedule.Forecast.REUSE), "s.json",
                Set.of());
        assertThatThrownBy(() -> harness(STEPS).run(shallower)).isInstanceOfSatisfying(ScheduleException.class,
                e -> assertThat(e.reason()).isEqualTo(ScheduleException.Reason.INCOMPLETE))
                .hasMessageStartingWith("schedule s.json: the schedule lists blocks 0.." + (DEPTH - 2));
        int[][][] attnOnly = new int[DEPTH][][];
        for (int b = 0; b < DEPTH; b++) {
            attnOnly[b] = new int[][] {perBlock(DEPTH)[b][0]};
        }
        SchedulePolicy noMlp = new SchedulePolicy(new CacheSchedule(TARGET, List.of("attn"), attnOnly,
                CacheSchedule.Forecast.REUSE, false));
        assertThatThrownBy(() -> harness(STEPS).run(noMlp)).isInstanceOfSatisfying(ScheduleException.class,
                e -> assertThat(e.reason()).isEqualTo(ScheduleException.Reason.INCOMPLETE)).hasMessageContaining("every branch");
    }

    @Test
    void aBlockOrBranchTheModelLacksIsATypedError() {
        SchedulePolicy deeper = new SchedulePolicy(schedule(perBlock(DEPTH + 1), CacheSchedule.Forecast.REUSE));
        assertThatThrownBy(() -> harness(STEPS).run(deeper)).isInstanceOfSatisfying(ScheduleException.class,
                e -> assertThat(e.reason()).isEqualTo(ScheduleException.Reason.UNKNOWN_BLOCK)).hasMessageContaining("block " + DEPTH);
        SchedulePolicy cross = new SchedulePolicy(new CacheSchedule(TARGET, List.of("attn", "cross"), perBlock(DEPTH),
                CacheSchedule.Forecast.REUSE, false));
        assertThatThrownBy(() -> harness(STEPS).run(cross)).isInstanceOfSatisfying(ScheduleException.class,
                e -> assertThat(e.reason()).isEqualTo(ScheduleException.Reason.UNKNOWN_BRANCH)).hasMessageContaining("\"cross\"");
    }

    @Test
    void invalidStepListsAreMalformed() {
        int[][][] noFirst = perBlock(DEPTH);
        noFirst[2][1] = new int[] {1, 5};
        assertMalformed(() -> schedule(noFirst, CacheSchedule.Forecast.REUSE), "block 2 branch mlp");
        int[][][] unsorted = perBlock(DEPTH);
        unsorted[0][0] = new int[] {0, 9, 4};
        assertMalformed(() -> schedule(unsorted, CacheSchedule.Forecast.REUSE), "increase strictly");
        int[][][] late = perBlock(DEPTH);
        late[0][0] = new int[] {0, STEPS};
        assertMalformed(() -> schedule(late, CacheSchedule.Forecast.REUSE), "below " + STEPS);
        assertMalformed(() -> CacheSchedule.Forecast.hiCache(2, 1.5), "sigma");
        assertMalformed(() -> new CacheSchedule.Target("m", "ddim", 0), "step count");
    }

    private static void assertMalformed(org.assertj.core.api.ThrowableAssert.ThrowingCallable call, String message) {
        assertThatThrownBy(call).isInstanceOfSatisfying(ScheduleException.class,
                e -> assertThat(e.reason()).isEqualTo(ScheduleException.Reason.MALFORMED)).hasMessageContaining(message);
    }
}
