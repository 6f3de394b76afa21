package dev.fora.examples.metrics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.fora.examples.image.ImageBatch;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ImageMetricsTest {

    @Test
    void psnrOfKnownArrays() {
        // [-1, 1] -> [0, 1]: reference 0.5 everywhere, image off by 0.1 in [0,1] units everywhere
        float[] ref = {0f, 0f, 0f, 0f};
        float[] img = {0.2f, -0.2f, 0.2f, -0.2f};
        // MSE = 0.01 -> PSNR = 10 log10(1/0.01) = 20 dB
        assertThat(ImageMetrics.psnr(img, ref)).isCloseTo(20.0, within(1e-5));
        // one pixel off by 1.0 (full range) of four: MSE = 0.25 -> 6.0206 dB
        float[] one = {1f, -1f, -1f, -1f};
        float[] zero = {-1f, -1f, -1f, -1f};
        assertThat(ImageMetrics.psnr(one, zero)).isCloseTo(10 * Math.log10(4), within(1e-9));
    }

    @Test
    void psnrOfIdenticalImagesIsInfinite() {
        float[] a = {0.1f, -0.3f, 0.9f};
        assertThat(ImageMetrics.psnr(a, a.clone())).isInfinite();
    }

    @Test
    void valuesOutsideTheRangeAreClipped() {
        assertThat(ImageMetrics.psnr(new float[] {3f}, new float[] {1f})).isInfinite();
    }

    @Test
    void meanPsnrAveragesPerImageValues() {
        ImageBatch ref = new ImageBatch(new float[] {0f, 0f, 0f, 0f}, 2, 1, 1, 2);
        ImageBatch img = new ImageBatch(new float[] {0.2f, 0.2f, 1f, 1f}, 2, 1, 1, 2);
        double expected = (20.0 + 10 * Math.log10(1 / 0.25)) / 2;
        assertThat(ImageMetrics.meanPsnr(img, ref)).isCloseTo(expected, within(1e-5));
    }

    @Test
    void ssimOfIdenticalImagesIsOne() {
        float[] img = random(3 * 16 * 16, 1);
        assertThat(ImageMetrics.ssim(img, img.clone(), 3, 16, 16)).isCloseTo(1.0, within(1e-12));
        ImageBatch b = new ImageBatch(concat(img, random(3 * 16 * 16, 2)), 2, 3, 16, 16);
        assertThat(ImageMetrics.meanSsim(b, b)).isCloseTo(1.0, within(1e-12));
    }

    @Test
    void ssimDropsWithNoiseAndIsSymmetric() {
        float[] a = random(16 * 16, 3);
        float[] b = a.clone();
        Random r = new Random(4);
        for (int i = 0; i < b.length; i++) {
            b[i] += (float) (0.3 * r.nextGaussian());
        }
        double ab = ImageMetrics.ssim(a, b, 1, 16, 16);
        assertThat(ab).isLessThan(0.95).isGreaterThan(0.0);
        assertThat(ImageMetrics.ssim(b, a, 1, 16, 16)).isCloseTo(ab, within(1e-12));
    }

    @Test
    void ssimOfConstantImagesFollowsTheLuminanceTerm() {
        // constant images: variances and covariance are 0, so SSIM = (2 mx my + C1) / (mx^2 + my^2 + C1)
        float[] a = new float[8 * 8];
        float[] b = new float[8 * 8];
        java.util.Arrays.fill(a, 0f); // 0.5
        java.util.Arrays.fill(b, 1f); // 1.0
        double c1 = 1e-4;
        double expected = (2 * 0.5 * 1.0 + c1) / (0.25 + 1.0 + c1);
        assertThat(ImageMetrics.ssim(a, b, 1, 8, 8)).isCloseTo(expected, within(1e-12));
    }

    @Test
    void gaussianWindowIsNormalised() {
        double[] w = ImageMetrics.gaussianWindow(11, 1.5);
        assertThat(java.util.Arrays.stream(w).sum()).isCloseTo(1.0, within(1e-12));
        assertThat(w[5]).isGreaterThan(w[4]);
        assertThat(w[4]).isCloseTo(w[6], within(1e-15));
    }

    private static float[] random(int n, long seed) {
        Random r = new Random(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (r.nextDouble() * 2 - 1);
        }
        return v;
    }

    private static float[] concat(float[] a, float[] b) {
        float[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
