package dev.fora.examples.metrics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.RealMatrix;
import org.junit.jupiter.api.Test;

class FrechetDistanceTest {

    @Test
    void identicalSetsAreAtDistanceZero() {
        float[][] a = gaussian(200, 8, 1);
        assertThat(FrechetDistance.between(a, a)).isCloseTo(0.0, within(1e-9));
    }

    @Test
    void identicalRankDeficientSetsAreAtDistanceZero() {
        // fewer samples than dimensions, as with a few generated images and 128 features
        float[][] a = gaussian(10, 32, 2);
        assertThat(FrechetDistance.between(a, a)).isCloseTo(0.0, within(1e-6));
    }

    @Test
    void shiftedSetIsAtTheSquaredMeanShift() {
        float[][] a = gaussian(300, 6, 3);
        float[] shift = {1f, -2f, 0.5f, 0f, 3f, -1f};
        float[][] b = new float[a.length][];
        for (int i = 0; i < a.length; i++) {
            b[i] = a[i].clone();
            for (int j = 0; j < shift.length; j++) {
                b[i][j] += shift[j];
            }
        }
        double expected = 1 + 4 + 0.25 + 0 + 9 + 1;
        // same covariance, so only |mu1 - mu2|^2 remains
        assertThat(FrechetDistance.between(a, b)).isCloseTo(expected, within(1e-3));
    }

    @Test
    void knownGaussiansInOneDimension() {
        // 1-D: d = (m1-m2)^2 + (s1 - s2)^2 for standard deviations s1, s2
        FrechetDistance.Gaussian g1 = new FrechetDistance.Gaussian(new double[] {0}, new double[][] {{4}}, 10);
        FrechetDistance.Gaussian g2 = new FrechetDistance.Gaussian(new double[] {1}, new double[][] {{9}}, 10);
        assertThat(FrechetDistance.between(g1, g2)).isCloseTo(1 + 1, within(1e-12));
    }

    @Test
    void diagonalCovariances() {
        // commuting covariances: tr sqrt(S1 S2) = sum sqrt(a_i b_i)
        FrechetDistance.Gaussian g1 = new FrechetDistance.Gaussian(new double[] {0, 0}, new double[][] {{1, 0}, {0, 4}}, 10);
        FrechetDistance.Gaussian g2 = new FrechetDistance.Gaussian(new double[] {0, 0}, new double[][] {{9, 0}, {0, 1}}, 10);
        double expected = 1 + 4 + 9 + 1 - 2 * (3 + 2);
        assertThat(FrechetDistance.between(g1, g2)).isCloseTo(expected, within(1e-12));
    }

    @Test
    void fitMatchesHandComputedMeanAndUnbiasedCovariance() {
        float[][] x = {{1, 2}, {3, 6}, {5, 10}};
        FrechetDistance.Gaussian g = FrechetDistance.fit(x);
        assertThat(g.mean()).containsExactly(3, 6);
        // deviations: (-2,-4), (0,0), (2,4) -> sums 8, 16, 32 over n-1 = 2
        assertThat(g.covariance()[0]).containsExactly(4, 8);
        assertThat(g.covariance()[1]).containsExactly(8, 16);
    }

    @Test
    void symmetricSqrtSquaresBack() {
        RealMatrix m = new Array2DRowRealMatrix(new double[][] {{4, 1}, {1, 3}});
        RealMatrix r = FrechetDistance.symmetricSqrt(m);
        RealMatrix back = r.multiply(r);
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 2; j++) {
                assertThat(back.getEntry(i, j)).isCloseTo(m.getEntry(i, j), within(1e-12));
            }
        }
    }

    @Test
    void rejectsTooFewSamplesAndMismatchedDimensions() {
        assertThatThrownBy(() -> FrechetDistance.fit(new float[][] {{1f}})).hasMessageContaining("at least 2");
        assertThatThrownBy(() -> FrechetDistance.between(gaussian(5, 2, 1), gaussian(5, 3, 1)))
                .hasMessageContaining("dimensions differ");
    }

    private static float[][] gaussian(int n, int d, long seed) {
        Random r = new Random(seed);
        float[][] out = new float[n][d];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                out[i][j] = (float) (r.nextGaussian() * (1 + j * 0.3) + (i % 3 == 0 ? 0.5 * j : 0));
            }
        }
        return out;
    }
}
