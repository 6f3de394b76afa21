package dev.fora.core.testing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.cache.CacheDecider;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.Decision;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.cache.Measurement;
import dev.fora.core.cache.StepContext;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The two policy examples of docs/policies.md ("Write your own policy"), as written there.
 * {@code DocsExamplesTest} (fora-examples) checks that the snippets still appear here line by line.
 */
class ReadmePolicyExamplesTest {

    @Test
    void myPolicyStaysCloseToTheUncachedRun() {
        // Compute every attention branch; compute MLPs only on every other step.
        CachePolicy attentionAlways = info -> ctx ->
                ctx.branch().name().equals("attn") || ctx.step().step() % 2 == 0 ? Decision.COMPUTE : Decision.REUSE;

        HarnessReport report = PolicyHarness.builder().steps(50).build().run(attentionAlways);

        assertThat(report.computeFraction()).isEqualTo(0.75);
        assertThat(report.decision(1, 0, 0, "mlp")).isEqualTo(Decision.Kind.REUSE);   // step 1, image 0, block 0
        assertThat(report.relativeL1Error()).isLessThan(0.05);
        assertThat(report.leakedTensors()).isZero();
        assertThat(PolicyHarness.withDefaults().batchInvarianceError(attentionAlways)).isZero();
    }

    @Test
    void anAdaptivePerImageRuleIsBatchInvariantOnTheCrossAttentionLayout() {
        // First-Block-Cache in a few lines: block 0 computes; the rest is reused until block 0's
        // residual change, accumulated since this image's last compute, passes 0.8.
        CachePolicy firstBlock = new CachePolicy() {
            public Set<Measurement> measurements(GenerationInfo info) { return Set.of(Measurement.residualChange(0)); }
            public CacheDecider newDecider(GenerationInfo info) {
                return new CacheDecider() {
                    double accumulated;
                    boolean compute;
                    public Decision decide(StepContext ctx) {
                        if (ctx.block() == 0) return Decision.COMPUTE;
                        if (ctx.block() == 1 && ctx.branchIndex() == 0) {
                            accumulated += ctx.measurement(Measurement.residualChange(0)).orElse(Double.POSITIVE_INFINITY);
                            compute = accumulated > 0.8;
                            if (compute) accumulated = 0;
                        }
                        return compute ? Decision.COMPUTE : Decision.REUSE;
                    }
                };
            }
        };
        PolicyHarness harness = PolicyHarness.builder().config(SyntheticDiT.CROSS_ATTENTION_SMALL).batch(4).steps(20).build();
        assertThat(harness.batchInvarianceError(firstBlock)).isZero();      // each image as if alone
        HarnessReport r = harness.run(firstBlock);
        assertThat(r.computeFraction(0)).isLessThan(1.0);                    // per image
        assertThat(r.decision(5, 2, 3, "cross")).isIn(Decision.Kind.COMPUTE, Decision.Kind.REUSE);
    }
}
