package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.djl.DiTPipeline.Precision;
import org.junit.jupiter.api.Test;

/** The opt-in bfloat16 variant: weights, arithmetic and cache in bfloat16, images close to float32's. */
class PrecisionTest {

    @Test
    void bfloat16GeneratesCloseToFloat32WithHalfTheCache() throws Exception {
        DiTPipeline fp32 = TestModels.pipeline();
        try (DiTPipeline bf16 = DiTPipeline.load(TestModels.modelDir(),
                DiTPipeline.Options.defaults().withPrecision(Precision.BFLOAT16))) {
            assertThat(bf16.precision()).isEqualTo(Precision.BFLOAT16);
            int before = bf16.manager().getManagedArrays().size();
            for (String policy : new String[] {"none", "fora:3"}) {
                GenerationRequest request = GenerationRequest.builder(0, 3, 5, 8).steps(20).policy(policy).seed(3).build();
                GeneratedImages a = fp32.generate(request);
                GeneratedImages b = bf16.generate(request);
                double psnr = psnr(a.data(), b.data());
                System.out.printf("bf16 vs fp32, %s, 4 images, DDIM-20: PSNR %.1f dB%n", policy, psnr);
                assertThat(psnr).as(policy).isGreaterThan(25);
                if (policy.equals("fora:3")) {
                    assertThat(b.stats().peakCacheBytes()).isEqualTo(a.stats().peakCacheBytes() / 2);
                }
            }
            GeneratedImages staged = bf16.generate(GenerationRequest.builder(1, 2).steps(10).policy("fora:2")
                    .fusedSteps(false).build());
            GeneratedImages fused = bf16.generate(GenerationRequest.builder(1, 2).steps(10).policy("fora:2").build());
            assertThat(Goldens.maxAbsDiff(staged.data(), fused.data())).isLessThan(0.05);
            // the first-block rule measures (rowAbsSums) on bfloat16 features
            GeneratedImages measured = bf16.generate(GenerationRequest.builder(1, 2).steps(10)
                    .policy(PerImageOnDjlTest.firstBlockRule(0.3)).build());
            assertThat(measured.stats().computeFraction()).isLessThan(1.0);
            assertThat(bf16.manager().getManagedArrays()).hasSize(before);
        }
    }

    /** PSNR of images in [-1, 1] mapped to [0, 1], over all pixels. */
    private static double psnr(float[] a, float[] b) {
        double mse = 0;
        for (int i = 0; i < a.length; i++) {
            double d = (Math.max(-1, Math.min(1, a[i])) - Math.max(-1, Math.min(1, b[i]))) / 2.0;
            mse += d * d;
        }
        mse /= a.length;
        return 10 * Math.log10(1 / mse);
    }
}
