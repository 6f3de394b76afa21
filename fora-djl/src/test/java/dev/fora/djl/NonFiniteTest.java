package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.sampling.NonFiniteOutputException;
import dev.fora.core.sampling.NoiseSource;
import dev.fora.core.sampling.SamplingStep;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * NaN or infinity in the noise or the latent used to come out as black images; now a typed
 * error names the step and image. (NaN weights end in the same model-output check; the CLI
 * test runs a model directory with NaN weights end to end.)
 */
class NonFiniteTest extends LeakCheckedPipelineTest {

    /** Seeded noise for a batch of 2 whose x_T of image 1 holds one {@code bad} value. */
    private static NoiseSource poisonedImage1(float bad) {
        NoiseSource seeded = dev.fora.core.sampling.PerImageNoise.seeded(0, 2);
        boolean[] first = {true};
        return shape -> {
            float[] draw = seeded.next(shape);
            if (first[0]) {
                draw[draw.length - 1] = bad;
                first[0] = false;
            }
            return draw;
        };
    }

    @Test
    void nanOrInfiniteNoiseIsATypedErrorNamingStepAndImage() {
        for (String sampler : new String[] {"ddim", "ddpm", "dpm-solver++"}) {
            for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY}) {
                for (String policy : new String[] {"none", "fora:2"}) {
                    assertThatThrownBy(() -> p.generate(GenerationRequest.builder(1, 2).sampler(sampler).steps(5)
                            .policy(policy).noise(poisonedImage1(bad)).build()))
                            .as("%s, %s, %s", sampler, bad, policy)
                            .isInstanceOfSatisfying(NonFiniteOutputException.class, e -> {
                                assertThat(e.step()).isZero();
                                assertThat(e.row()).isEqualTo(1);
                            })
                            .hasMessageContaining("not finite (NaN or infinity) at step 0 of 5 (timestep 999.0), image 1");
                }
            }
        }
        // the whole-model path is checked too
        assertThatThrownBy(() -> p.generate(GenerationRequest.builder(1, 2).steps(5).noise(poisonedImage1(Float.NaN))
                .forward(GenerationRequest.Forward.WHOLE_MODEL).build())).isInstanceOf(NonFiniteOutputException.class);
    }

    @Test
    void withTheCheckOffNanNoiseGivesNanImagesAsBefore() {
        float[] data = p.generate(GenerationRequest.builder(1, 2).steps(5).noise(poisonedImage1(Float.NaN))
                .checkFinite(false).build()).data();
        int perImage = data.length / 2;
        assertThat(Arrays.copyOfRange(data, perImage, data.length)).containsOnly(Float.NaN);
    }

    @Test
    void aNanLatentThroughTheLowLevelApiIsATypedError() {
        var c = p.config();
        SamplingStep first = SamplingStep.of(p.schedule(10), 0);
        try (NDManager mine = NDManager.newBaseManager();
             DjlGeneration g = p.openGeneration(CachePolicies.parse("fora:2"), 10, 2, true)) {
            float[] x = new float[2 * c.inChannels() * c.inputSize() * c.inputSize()];
            x[0] = Float.NaN; // image 0
            NDArray latent = mine.create(x, new Shape(2, c.inChannels(), c.inputSize(), c.inputSize()));
            assertThatThrownBy(() -> g.predictGuided(first, latent, ClassLabels.of(3, 4), 1.5))
                    .isInstanceOf(NonFiniteOutputException.class)
                    .hasMessageContaining("at step 0 of 10")
                    .hasMessageContaining("image 0 (conditional half)");
            assertThat(mine.getManagedArrays()).hasSize(1); // the latent: the output was released
        }
    }
}
