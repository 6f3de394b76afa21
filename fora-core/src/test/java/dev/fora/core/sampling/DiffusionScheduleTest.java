package dev.fora.core.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

class DiffusionScheduleTest {

    private final DiffusionSchedule base = DiffusionSchedule.linear(1000);

    @Test
    void linearBetasRunFrom1e4To002() {
        assertThat(base.steps()).isEqualTo(1000);
        assertThat(base.beta(0)).isEqualTo(1e-4);
        assertThat(base.beta(999)).isEqualTo(0.02);
        assertThat(base.beta(500)).isCloseTo(1e-4 + 500 * (0.02 - 1e-4) / 999, within(1e-15));
        assertThat(base.timestep(123)).isEqualTo(123);
        // abar_999 of DiT's schedule is about 4.04e-5
        assertThat(base.alphaCumprod(999)).isCloseTo(4.04e-5, within(0.01e-5));
    }

    @Test
    void linearWithEndPointsUsesThemAndTheOneArgumentFormIsDiTsDefault() {
        assertThat(DiffusionSchedule.linear(1000, 1e-4, 0.02).betas()).containsExactly(base.betas());
        DiffusionSchedule other = DiffusionSchedule.linear(1000, 2e-4, 0.03);
        assertThat(other.beta(0)).isEqualTo(2e-4);
        assertThat(other.beta(999)).isEqualTo(0.03);
        assertThat(other.beta(500)).isCloseTo(2e-4 + 500 * (0.03 - 2e-4) / 999, within(1e-15));
        assertThat(other.alphaCumprod(999)).isLessThan(base.alphaCumprod(999));
        // respacing works from the given betas, not the defaults
        assertThat(other.respace(50).betas()).isNotEqualTo(base.respace(50).betas());
    }

    @Test
    void linearScalesTheEndPointsBy1000OverTheStepCountLikeDiT() {
        // get_named_beta_schedule("linear", 500): scale 2, linspace(2 * start, 2 * end, 500)
        DiffusionSchedule half = DiffusionSchedule.linear(500, 1e-4, 0.02);
        assertThat(half.steps()).isEqualTo(500);
        assertThat(half.beta(0)).isEqualTo(2e-4);
        assertThat(half.beta(499)).isEqualTo(0.04);
        assertThat(DiffusionSchedule.linear(500).betas()).containsExactly(half.betas());
        DiffusionSchedule custom = DiffusionSchedule.linear(2000, 3e-4, 0.01);
        assertThat(custom.beta(0)).isEqualTo(0.5 * 3e-4);
        assertThat(custom.beta(1999)).isEqualTo(0.5 * 0.01);
    }

    @Test
    void linearRejectsBetasThatAreNotASchedule() {
        assertThatThrownBy(() -> DiffusionSchedule.linear(1000, 0, 0.02)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("0 < betaStart <= betaEnd");
        assertThatThrownBy(() -> DiffusionSchedule.linear(1000, 0.02, 1e-4)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> DiffusionSchedule.linear(1000, 1e-4, Double.NaN)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> DiffusionSchedule.linear(1000, 1e-4, 1.0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("must be < 1");
        // 0.6 is fine for 1000 steps but scales to 1.2 for 500
        assertThatThrownBy(() -> DiffusionSchedule.linear(500, 1e-4, 0.6)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("must be < 1");
        assertThatThrownBy(() -> DiffusionSchedule.linear(1, 1e-4, 0.02)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void respacingTo50KeepsDiTsTimesteps() {
        int[] t = DiffusionSchedule.spaceTimesteps(1000, 50);
        assertThat(t).hasSize(50);
        assertThat(Arrays.copyOfRange(t, 0, 6)).containsExactly(0, 20, 41, 61, 82, 102);
        assertThat(Arrays.copyOfRange(t, 46, 50)).containsExactly(938, 958, 979, 999);
        assertThat(base.respace(50).timesteps()).containsExactly(t);
    }

    @Test
    void respacingTo250And20KeepsDiTsTimesteps() {
        int[] t250 = DiffusionSchedule.spaceTimesteps(1000, 250);
        assertThat(t250).hasSize(250);
        assertThat(Arrays.copyOfRange(t250, 0, 4)).containsExactly(0, 4, 8, 12);
        assertThat(Arrays.copyOfRange(t250, 246, 250)).containsExactly(987, 991, 995, 999);
        int[] t20 = DiffusionSchedule.spaceTimesteps(1000, 20);
        assertThat(t20).hasSize(20);
        assertThat(Arrays.copyOfRange(t20, 0, 4)).containsExactly(0, 53, 105, 158);
        assertThat(Arrays.copyOfRange(t20, 17, 20)).containsExactly(894, 946, 999);
    }

    @Test
    void respacingRoundsHalfToEvenLikePython() {
        // 5 of 8: stride 7/4 = 1.75 -> 0, 1.75, 3.5, 5.25, 7 -> round: 0, 2, 4 (3.5 -> 4), 5, 7
        assertThat(DiffusionSchedule.spaceTimesteps(8, 5)).containsExactly(0, 2, 4, 5, 7);
        // 3 of 6: stride 2.5 -> 0, 2.5, 5 -> 0, 2 (half to even), 5
        assertThat(DiffusionSchedule.spaceTimesteps(6, 3)).containsExactly(0, 2, 5);
        assertThat(DiffusionSchedule.spaceTimesteps(1000, 1)).containsExactly(0);
        assertThatThrownBy(() -> DiffusionSchedule.spaceTimesteps(10, 11)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void respacedBetasComeFromTheKeptCumulativeAlphas() {
        DiffusionSchedule r = base.respace(50);
        double[] abar = new double[1000];
        double prod = 1;
        for (int t = 0; t < 1000; t++) {
            prod *= 1 - (1e-4 + t * (0.02 - 1e-4) / 999);
            abar[t] = prod;
        }
        int[] kept = r.timesteps();
        double previous = 1;
        for (int i = 0; i < 50; i++) {
            double expectedBeta = 1 - abar[kept[i]] / previous;
            assertThat(r.beta(i)).as("beta %d", i).isCloseTo(expectedBeta, within(1e-12));
            assertThat(r.alphaCumprod(i)).as("abar %d", i).isCloseTo(abar[kept[i]], within(1e-12));
            previous = abar[kept[i]];
        }
        assertThat(r.beta(0)).isCloseTo(1e-4, within(1e-15));
        assertThatThrownBy(() -> r.respace(10)).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void posteriorTermsFollowDiT() {
        DiffusionSchedule r = base.respace(10);
        for (int i = 1; i < 10; i++) {
            double beta = r.beta(i);
            double abar = r.alphaCumprod(i);
            double prev = r.alphaCumprod(i - 1);
            assertThat(r.alphaCumprodPrev(i)).isEqualTo(prev);
            assertThat(r.posteriorVariance(i)).isCloseTo(beta * (1 - prev) / (1 - abar), within(1e-15));
            assertThat(r.posteriorLogVarianceClipped(i)).isCloseTo(Math.log(beta * (1 - prev) / (1 - abar)), within(1e-12));
            assertThat(r.posteriorMeanCoef1(i)).isCloseTo(beta * Math.sqrt(prev) / (1 - abar), within(1e-15));
            assertThat(r.posteriorMeanCoef2(i)).isCloseTo((1 - prev) * Math.sqrt(1 - beta) / (1 - abar), within(1e-15));
        }
        assertThat(r.posteriorVariance(0)).isZero();
        assertThat(r.posteriorLogVarianceClipped(0)).isEqualTo(Math.log(r.posteriorVariance(1)));
        assertThat(r.alphaCumprodPrev(0)).isEqualTo(1.0);
    }
}
