package dev.fora.core.calibration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.Measurement;
import dev.fora.core.cache.TeaCachePolicy;
import dev.fora.core.recording.Recording;
import dev.fora.core.sampling.DdpmSampler;
import dev.fora.core.testing.PolicyHarness;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Calibrating thresholds to a target speed-up on some images, checked on others. */
class CalibrationTest {

    private static PolicyHarness images(int steps, long noiseSeed, boolean ddpm) {
        PolicyHarness.Builder b = PolicyHarness.builder().steps(steps).batch(8).noiseSeed(noiseSeed);
        if (ddpm) {
            b.sampler(DdpmSampler::new);
        }
        return b.build();
    }

    @ParameterizedTest(name = "{0} to {1}x, {2} steps, ddpm {3}")
    @CsvSource({"teacache, 2.5, 25, false", "teacache, 3, 20, true", "fbcache, 2, 20, false", "magcache, 3, 30, false"})
    void theCalibratedThresholdHitsTheTargetOnHeldOutImages(String policy, double target, int steps, boolean ddpm) {
        PolicyHarness calibration = images(steps, 1000, ddpm);
        PolicyHarness heldOut = images(steps, 5000, ddpm);
        Recording uncached = calibration.record();
        Calibration.Result r = Calibration.of(policy).targetSpeedup(target).run(uncached,
                p -> calibration.run(p).stats().flopSpeedup());
        assertThat(r.speedup()).as(r.toString()).isCloseTo(target, within(target * 0.02));
        assertThat(r.probes()).hasSizeLessThanOrEqualTo(24 + 6);
        // the spec names the calibrated policy
        assertThat(CachePolicies.parse(r.spec()).spec()).contains(r.spec());
        assertThat(r.spec()).startsWith(policy + ":");
        double heldOutSpeedup = heldOut.run(CachePolicies.parse(r.spec())).stats().flopSpeedup();
        assertThat(heldOutSpeedup).as("%s on held-out images", r.spec()).isCloseTo(target, within(target * 0.05));
    }

    @Test
    void teaCachesPolynomialIsFittedToTheRecordedChanges() {
        Recording uncached = images(30, 1000, false).record();
        double[][] xy = Calibration.rescalingPairs(uncached, Measurement.modulatedInputChange(0));
        assertThat(xy[0]).hasSize(29 * 8);
        // a stand-in probe whose speed-up grows with the threshold: the search, without runs
        Calibration.Result r = Calibration.of("teacache").targetSpeedup(2).run(uncached,
                p -> 1 + 10 * ((TeaCachePolicy) p).threshold());
        assertThat(r.speedup()).isCloseTo(2, within(0.02));
        assertThat(r.threshold()).isCloseTo(0.1, within(0.002));
        assertThat(r.polynomial()).hasSize(3);
        assertThat(r.fitPoints()).isEqualTo(29 * 8);
        assertThat(r.fitRSquared()).isBetween(0.0, 1.0);
        TeaCachePolicy tea = (TeaCachePolicy) r.policy();
        assertThat(tea.rescale()).containsExactly(r.polynomial());
        // the fit does no worse than the mean (R^2 >= 0) and follows y where it is dense: residuals average out
        double mean = 0;
        for (int i = 0; i < xy[0].length; i++) {
            mean += xy[1][i] - (r.polynomial()[0] + r.polynomial()[1] * xy[0][i] + r.polynomial()[2] * xy[0][i] * xy[0][i]);
        }
        assertThat(mean / xy[0].length).isCloseTo(0, within(0.01));
    }

    @Test
    void aLeastSquaresFitRecoversAPolynomial() {
        double[] x = new double[50];
        double[] y = new double[50];
        for (int i = 0; i < 50; i++) {
            x[i] = 0.01 * i;
            y[i] = 0.5 - 2 * x[i] + 30 * x[i] * x[i];
        }
        assertThat(Calibration.fit(x, y, 2)).containsExactly(new double[] {0.5, -2, 30}, within(1e-9));
        assertThat(Calibration.round(0.0123456, 3)).isEqualTo(0.0123);
        assertThat(Calibration.round(-1234.5, 2)).isEqualTo(-1200);
    }

    @Test
    void anUnreachableTargetIsAClearError() {
        Recording uncached = images(10, 1000, false).record();
        // First-Block-Cache always computes block 0 of 6: never 7x (a stand-in probe that levels off at 5.5x)
        assertThatThrownBy(() -> Calibration.of("fbcache").targetSpeedup(7).run(uncached,
                p -> 1 + 4.5 * Math.min(1, ((dev.fora.core.cache.FirstBlockCachePolicy) p).threshold())))
                .isInstanceOf(CalibrationException.class)
                .hasMessageContaining("fbcache does not reach 7.000x")
                .hasMessageContaining("block 0 at every step");
        assertThatThrownBy(() -> Calibration.of("fora")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("fbcache, teacache, magcache");
        assertThatThrownBy(() -> Calibration.of("teacache").targetSpeedup(1)).isInstanceOf(IllegalArgumentException.class);
    }
}
