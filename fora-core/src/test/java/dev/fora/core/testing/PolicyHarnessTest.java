package dev.fora.core.testing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.cache.CacheDecider;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.Decision;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.cache.NoCache;
import dev.fora.core.sampling.DdpmSampler;
import dev.fora.core.sampling.DpmSolverPlusPlusSampler;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class PolicyHarnessTest {

    private static final PolicyHarness HARNESS = PolicyHarness.withDefaults();

    @Test
    void noCacheReproducesTheUncachedRunExactly() {
        HarnessReport report = HARNESS.run("none");
        assertThat(report.maxAbsError()).isZero();
        assertThat(report.relativeL1Error()).isZero();
        assertThat(report.computeFraction()).isEqualTo(1.0);
        assertThat(report.leakedTensors()).isZero();
        assertThat(report.output()).containsExactly(report.reference());
    }

    @Test
    void foraErrorGrowsWithTheInterval() {
        HarnessReport n2 = HARNESS.run("fora:2");
        HarnessReport n3 = HARNESS.run("fora:3");
        HarnessReport n5 = HARNESS.run("fora:5");
        assertThat(n2.computeFraction()).isEqualTo(26 / 50.0);
        assertThat(n3.computeFraction()).isEqualTo(18 / 50.0);
        assertThat(n5.computeFraction()).isEqualTo(11 / 50.0);
        assertThat(n2.relativeL1Error()).isPositive().isLessThan(n3.relativeL1Error());
        assertThat(n3.relativeL1Error()).isLessThan(n5.relativeL1Error());
        assertThat(n2.maxAbsError()).isLessThan(n5.maxAbsError());
        assertThat(n5.leakedTensors()).isZero();
    }

    @Test
    void reportShowsEachDecision() {
        HarnessReport report = HARNESS.run("fora:3");
        // K = 50: step 0 (i = 49) and step 1 (i = 48) are full, step 2 (i = 47) reuses
        for (int image = 0; image < 2; image++) {
            assertThat(report.decision(0, image, 5, "mlp")).isEqualTo(Decision.Kind.COMPUTE);
            assertThat(report.decision(1, image, 0, "attn")).isEqualTo(Decision.Kind.COMPUTE);
            assertThat(report.decision(2, image, 3, "attn")).isEqualTo(Decision.Kind.REUSE);
            assertThat(report.computeFraction(image)).isEqualTo(18 / 50.0);
        }
        assertThat(report.fullSteps()).isEqualTo(18);
        assertThat(report.stats().peakCacheBytes()).isEqualTo(2L * 6 * 4 * 16 * 32 * 4); // CFG batch 2 x 2
        assertThat(report.toString()).contains("fora:3", "compute fraction 0.360");
    }

    @Test
    void worksWithOtherSamplersAndWithoutGuidance() {
        PolicyHarness ddpm = PolicyHarness.builder().steps(20).cfgScale(1.0).batch(1).sampler(DdpmSampler::new).build();
        assertThat(ddpm.run("none").maxAbsError()).isZero();
        HarnessReport fora = ddpm.run("fora:3");
        assertThat(fora.fullSteps()).isEqualTo(8);
        assertThat(fora.relativeL1Error()).isPositive();
        PolicyHarness dpm = PolicyHarness.builder().steps(20).sampler(DpmSolverPlusPlusSampler::new).build();
        assertThat(dpm.run("fora:2").relativeL1Error()).isLessThan(dpm.run("fora:4").relativeL1Error());
    }

    /** The first example of docs/policies.md ("Write your own policy"); ReadmePolicyExamplesTest holds it verbatim. */
    @Test
    void myPolicyStaysCloseToTheUncachedRun() {
        // Compute every attention branch; compute MLPs only on every other step.
        CachePolicy attentionAlways = info -> ctx ->
                ctx.branch().name().equals("attn") || ctx.step().step() % 2 == 0 ? Decision.COMPUTE : Decision.REUSE;

        HarnessReport report = PolicyHarness.builder().steps(50).build().run(attentionAlways);

        assertThat(report.computeFraction()).isEqualTo(0.75);
        assertThat(report.decision(1, 0, 0, "mlp")).isEqualTo(Decision.Kind.REUSE);
        assertThat(report.relativeL1Error()).isLessThan(0.05);
        assertThat(report.leakedTensors()).isZero();
    }

    @Test
    void eachImageHasItsOwnNoiseAndLabelSoItIsTheSameImageInAnyBatch() {
        PolicyHarness three = PolicyHarness.builder().steps(10).batch(3).build();
        HarnessReport none = three.run("none");
        int per = none.output().length / 3;
        float[] out = none.output();
        // images 0, 1 and 2 (seeds 42, 43, 44; labels 0, 1, 2) differ
        assertThat(Arrays.copyOfRange(out, 0, per)).isNotEqualTo(Arrays.copyOfRange(out, per, 2 * per));
        assertThat(Arrays.copyOfRange(out, per, 2 * per))
                .isNotEqualTo(Arrays.copyOfRange(out, 2 * per, 3 * per));
        // the first image of a batch of 3 is the image of a batch of 1
        float[] alone = PolicyHarness.builder().steps(10).batch(1).build().run("none").output();
        assertThat(Arrays.copyOfRange(out, 0, per)).containsExactly(alone);
        // and a per-image policy keeps every image as it is alone
        assertThat(three.batchInvarianceError(CachePolicies.parse("fora:3"))).isZero();
        assertThat(three.batchInvarianceError(NoCache.INSTANCE)).isZero();
    }

    @Test
    void theBuiltInsDeclaredFullStepsAreTheStepsTheirDecidersComputeInFull() {
        PolicyHarness harness = PolicyHarness.builder().steps(20).build();
        for (String spec : new String[] {"none", "fora:3", "fora:5", "taylorseer:3,2", "hicache:4,2", "warmup:4,fora:3",
                "cooldown:3,taylorseer:5,1", "mask:11010011100101011001"}) {
            HarnessReport report = harness.run(spec);
            assertThat(report.policy().fullSteps(new GenerationInfo(20, SyntheticDiT.SMALL, 2, true, 2))).as(spec).isPresent();
            assertThat(report.fullStepsMismatches()).as(spec).isEmpty();
        }
    }

    @Test
    void aWrongFullStepsDeclarationIsReportedStepByStep() {
        CachePolicy wrong = new CachePolicy() {
            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                return ctx -> ctx.step().step() % 2 == 0 ? Decision.COMPUTE : Decision.REUSE;
            }

            @Override
            public Optional<BitSet> fullSteps(GenerationInfo info) {
                BitSet full = new BitSet();
                full.set(0, 3); // steps 0 and 2 are right, step 1 is not
                return Optional.of(full);
            }
        };
        assertThat(PolicyHarness.builder().steps(6).build().run(wrong).fullStepsMismatches()).containsExactly(1, 4);
    }
}
