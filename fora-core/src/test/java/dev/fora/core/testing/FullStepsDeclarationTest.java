package dev.fora.core.testing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.sampling.DdpmSampler;
import org.junit.jupiter.api.Test;

/**
 * The built-ins' declared full steps are what their deciders do at every step count, also at the
 * edges (one step, wrappers longer than the run, nested wrappers), unguided and guided: a
 * scheduler lining runs up on them would otherwise split fused calls it meant to share.
 */
class FullStepsDeclarationTest {

    @Test
    void theBuiltInsDeclareTheirFullStepsRightAtAnyStepCount() {
        String[] specs = {"none", "fora:1", "fora:2", "fora:3", "fora:7", "taylorseer:1,1", "taylorseer:3,2", "taylorseer:2,3",
            "hicache:4,2", "hicache:2,1", "warmup:30,fora:3", "cooldown:40,fora:2", "warmup:2,cooldown:3,hicache:3,2",
            "cooldown:4,warmup:1,taylorseer:4,1"};
        for (int steps : new int[] {1, 2, 3, 5, 8, 13, 31}) {
            for (double cfg : new double[] {1.0, 1.5}) {
                PolicyHarness harness = PolicyHarness.builder().steps(steps).cfgScale(cfg).batch(2).sampler(DdpmSampler::new)
                        .build();
                for (String spec : specs) {
                    HarnessReport report = harness.run(spec);
                    String what = spec + " over " + steps + " steps, cfg " + cfg;
                    assertThat(report.policy().fullSteps(new GenerationInfo(steps, SyntheticDiT.SMALL, 2, cfg != 1.0, 1)))
                            .as(what).isPresent();
                    assertThat(report.fullStepsMismatches()).as(what).isEmpty();
                }
            }
        }
        int steps = 6;
        assertThat(PolicyHarness.builder().steps(steps).build().run(CachePolicies.parse("mask:101101")).fullStepsMismatches())
                .isEmpty();
    }
}
