package dev.fora.core.cache;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.testing.HarnessReport;
import dev.fora.core.testing.PolicyHarness;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Each decider hook and policy declaration has one form, so a user's decorator that forwards
 * every method of {@link CachePolicy} and {@link CacheDecider} (as {@link WarmupCooldown} does)
 * changes nothing about any built-in.
 */
class ForwardingDecoratorTest {

    /** What a user writes to wrap a policy: forward everything. */
    record Forwarding(CachePolicy inner) implements CachePolicy {

        @Override
        public CacheDecider newDecider(GenerationInfo info) {
            CacheDecider d = inner.newDecider(info);
            return new CacheDecider() {
                @Override
                public void beginStep(SamplingStep step) {
                    d.beginStep(step);
                }

                @Override
                public Decision decide(StepContext context) {
                    return d.decide(context);
                }

                @Override
                public void computed(StepContext context, double change) {
                    d.computed(context, change);
                }

                @Override
                public void endStep(StepContext context) {
                    d.endStep(context);
                }
            };
        }

        @Override
        public Set<Measurement> measurements(GenerationInfo info) {
            return inner.measurements(info);
        }

        @Override
        public Set<BlockRange> blockRanges(GenerationInfo info) {
            return inner.blockRanges(info);
        }

        @Override
        public int historyLength() {
            return inner.historyLength();
        }

        @Override
        public boolean separateGuidanceHalves() {
            return inner.separateGuidanceHalves();
        }

        @Override
        public Optional<String> spec() {
            return inner.spec();
        }
    }

    @Test
    void aForwardingDecoratorAroundEveryBuiltInChangesNothing() {
        PolicyHarness harness = PolicyHarness.builder().steps(20).build();
        for (String spec : List.of("none", "fora:3", "taylorseer:3,2", "hicache:4,2,0.75", "fbcache:0.1", "teacache:0.2",
                "magcache:0.1,2", "deltadit:3,2", "pab:attn=2,mlp=3", "warmup:2,fora:4", "cooldown:2,taylorseer:4",
                "mask:" + "11010".repeat(4))) {
            CachePolicy policy = CachePolicies.parse(spec);
            HarnessReport plain = harness.run(policy);
            HarnessReport wrapped = harness.run(new Forwarding(policy));
            assertThat(wrapped.stats().decisionMap()).as(spec).isEqualTo(plain.stats().decisionMap());
            assertThat(wrapped.output()).as(spec).containsExactly(plain.output());
            assertThat(plain.computeFraction()).as(spec + " computes").isPositive();
        }
    }
}
