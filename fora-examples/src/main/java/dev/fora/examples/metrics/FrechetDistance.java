package dev.fora.examples.metrics;

import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.EigenDecomposition;
import org.apache.commons.math3.linear.RealMatrix;

/**
 * The Frechet distance between two sets of feature vectors, each summarised by a Gaussian
 * (mean {@code mu}, covariance {@code S}), as in FID:
 *
 * <pre>
 * d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr( (S1 S2)^(1/2) )
 * </pre>
 *
 * <p><b>Matrix square root.</b> {@code S1 S2} is not symmetric, so instead of a general
 * matrix square root (scipy's {@code sqrtm}, as the FID reference code uses) this class uses
 * the identity {@code tr((S1 S2)^(1/2)) = tr((R S2 R)^(1/2))} with {@code R = S1^(1/2)}:
 * {@code S1 S2} is similar to {@code R S2 R} ({@code S1 S2 = R (R S2 R) R^-1} when {@code S1}
 * is invertible, and by continuity otherwise), and {@code R S2 R} is symmetric positive
 * semi-definite. So two symmetric eigen-decompositions suffice (commons-math3
 * {@link EigenDecomposition}): {@code R = V diag(sqrt(max(l, 0))) V^T} from {@code S1}, then
 * the trace term is the sum of {@code sqrt(max(l, 0))} over the eigenvalues of
 * {@code R S2 R}. Tiny negative eigenvalues (round-off on rank-deficient covariances, which
 * is the normal case when there are fewer samples than feature dimensions) are clamped to 0.
 *
 * <p>Covariances are the unbiased sample covariances ({@code 1/(n-1)}, numpy's {@code cov}
 * default). With fewer samples than dimensions the estimate is biased upwards and noisy:
 * compare distances computed with the same sample count only.
 */
public final class FrechetDistance {

    private FrechetDistance() {
    }

    /** Mean and covariance of a feature set. */
    public record Gaussian(double[] mean, double[][] covariance, int samples) {
    }

    /**
     * Frechet distance between two feature sets.
     *
     * @param a {@code n1 x d} features, one row per sample, {@code n1 >= 2}
     * @param b {@code n2 x d} features, {@code n2 >= 2}
     */
    public static double between(float[][] a, float[][] b) {
        return between(fit(a), fit(b));
    }

    /** Frechet distance between two fitted Gaussians of the same dimension. */
    public static double between(Gaussian g1, Gaussian g2) {
        int d = g1.mean().length;
        if (g2.mean().length != d) {
            throw new IllegalArgumentException("feature dimensions differ: " + d + " vs " + g2.mean().length);
        }
        double meanTerm = 0;
        for (int i = 0; i < d; i++) {
            double diff = g1.mean()[i] - g2.mean()[i];
            meanTerm += diff * diff;
        }
        RealMatrix s1 = new Array2DRowRealMatrix(g1.covariance(), false);
        RealMatrix s2 = new Array2DRowRealMatrix(g2.covariance(), false);
        RealMatrix r = symmetricSqrt(s1);
        RealMatrix middle = symmetrize(r.multiply(s2).multiply(r));
        double traceSqrt = 0;
        for (double l : new EigenDecomposition(middle).getRealEigenvalues()) {
            traceSqrt += Math.sqrt(Math.max(l, 0));
        }
        double value = meanTerm + s1.getTrace() + s2.getTrace() - 2 * traceSqrt;
        // Round-off can leave a tiny negative number for identical sets.
        return Math.max(value, 0);
    }

    /** Sample mean and unbiased covariance of {@code n x d} features. */
    public static Gaussian fit(float[][] features) {
        int n = features.length;
        if (n < 2) {
            throw new IllegalArgumentException("a covariance needs at least 2 samples, got " + n);
        }
        int d = features[0].length;
        double[] mean = new double[d];
        for (float[] row : features) {
            if (row.length != d) {
                throw new IllegalArgumentException("feature rows differ in length: " + d + " vs " + row.length);
            }
            for (int j = 0; j < d; j++) {
                mean[j] += row[j];
            }
        }
        for (int j = 0; j < d; j++) {
            mean[j] /= n;
        }
        double[][] cov = new double[d][d];
        double[] centred = new double[d];
        for (float[] row : features) {
            for (int j = 0; j < d; j++) {
                centred[j] = row[j] - mean[j];
            }
            for (int i = 0; i < d; i++) {
                double ci = centred[i];
                for (int j = i; j < d; j++) {
                    cov[i][j] += ci * centred[j];
                }
            }
        }
        for (int i = 0; i < d; i++) {
            for (int j = i; j < d; j++) {
                cov[i][j] /= n - 1;
                cov[j][i] = cov[i][j];
            }
        }
        return new Gaussian(mean, cov, n);
    }

    /** {@code V diag(sqrt(max(l, 0))) V^T} of a symmetric positive semi-definite matrix. */
    static RealMatrix symmetricSqrt(RealMatrix m) {
        EigenDecomposition eig = new EigenDecomposition(symmetrize(m));
        RealMatrix v = eig.getV();
        double[] l = eig.getRealEigenvalues();
        int d = l.length;
        RealMatrix scaled = v.copy();
        for (int j = 0; j < d; j++) {
            double s = Math.sqrt(Math.max(l[j], 0));
            for (int i = 0; i < d; i++) {
                scaled.setEntry(i, j, v.getEntry(i, j) * s);
            }
        }
        return scaled.multiply(v.transpose());
    }

    /** {@code (m + m^T) / 2}: removes round-off asymmetry so the symmetric eigen-solver applies. */
    private static RealMatrix symmetrize(RealMatrix m) {
        return m.add(m.transpose()).scalarMultiply(0.5);
    }
}
