package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.Decision;
import dev.fora.core.engine.GenerationStats;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Every built-in policy through the library on the shipped model: per image, skipped work, nothing left behind. */
class BuiltInPoliciesOnDjlTest {

    private static final int STEPS = 10;

    @ParameterizedTest
    @ValueSource(strings = {"taylorseer:3,3", "hicache:3", "fbcache:0.3", "teacache:0.2", "magcache:0.2,2", "deltadit:2,3",
        "pab:attn=2,mlp=3", "warmup:2,cooldown:2,fbcache:0.5"})
    void runsPerImageAndSkipsWork(String spec) throws Exception {
        DiTPipeline p = TestModels.pipeline();
        long before = p.manager().getManagedArrays().size();
        GeneratedImages images = p.generate(GenerationRequest.builder(1, 4, 8).steps(STEPS).policy(spec).seed(3).build());
        GenerationStats stats = images.stats();
        assertThat(stats.computeFraction()).as(spec).isLessThan(1.0);
        assertThat(stats.count(Decision.Kind.COMPUTE)).as(spec).isPositive();
        assertThat(stats.decision(0, 2, 0, 0)).isEqualTo(Decision.Kind.COMPUTE);
        // each image is the image generated alone, with the same seed
        for (int k = 0; k < 3; k++) {
            GeneratedImages alone = p.generate(GenerationRequest.builder(new int[] {1, 4, 8}[k]).steps(STEPS).policy(spec)
                    .seed(3 + k).build());
            assertThat(alone.stats().computeFraction()).as("%s image %d", spec, k).isEqualTo(stats.computeFraction(k));
            float[] a = alone.image(0);
            float[] b = images.image(k);
            double max = 0;
            for (int i = 0; i < a.length; i++) {
                max = Math.max(max, Math.abs(a[i] - b[i]));
            }
            assertThat(max).as("%s image %d", spec, k).isLessThan(1e-3);
        }
        assertThat(p.manager().getManagedArrays().size()).as("arrays left under the model").isEqualTo(before);
        assertThat(CachePolicies.parse(spec).spec()).contains(spec);
    }
}
