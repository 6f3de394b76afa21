package dev.fora.core.sampling;

import java.util.Arrays;
import java.util.TreeSet;

/**
 * A discrete Gaussian diffusion schedule and the coefficients the samplers need, computed
 * exactly as DiT's {@code gaussian_diffusion.py} / {@code respace.py} compute them (double
 * precision, same operation order).
 *
 * <p>{@link #linear(int)} is DiT's training schedule (1000 linear betas from 1e-4 to 0.02;
 * {@link #linear(int, double, double)} takes other end points);
 * {@link #respace(int)} keeps {@code K} of its timesteps like
 * {@code space_timesteps(1000, "K")} and rebuilds the betas from the kept
 * {@code alphas_cumprod}: {@code beta_i = 1 - abar_i / abar_prev}. Index {@code i} of a
 * respaced schedule runs {@code 0..K-1}; {@link #timestep(int)} is the original timestep the
 * model is fed.
 */
public final class DiffusionSchedule {

    private final int[] timesteps;
    private final boolean respaced;
    private final double[] betas;
    private final double[] alphasCumprod;
    private final double[] alphasCumprodPrev;
    private final double[] posteriorVariance;
    private final double[] posteriorLogVarianceClipped;
    private final double[] posteriorMeanCoef1;
    private final double[] posteriorMeanCoef2;

    private DiffusionSchedule(double[] betas, int[] timesteps, boolean respaced) {
        int n = betas.length;
        this.betas = betas;
        this.timesteps = timesteps;
        this.respaced = respaced;
        alphasCumprod = new double[n];
        double prod = 1.0;
        for (int i = 0; i < n; i++) {
            prod *= 1.0 - betas[i];
            alphasCumprod[i] = prod;
        }
        alphasCumprodPrev = new double[n];
        posteriorVariance = new double[n];
        posteriorMeanCoef1 = new double[n];
        posteriorMeanCoef2 = new double[n];
        for (int i = 0; i < n; i++) {
            alphasCumprodPrev[i] = i == 0 ? 1.0 : alphasCumprod[i - 1];
            double alpha = 1.0 - betas[i];
            posteriorVariance[i] = betas[i] * (1.0 - alphasCumprodPrev[i]) / (1.0 - alphasCumprod[i]);
            posteriorMeanCoef1[i] = betas[i] * Math.sqrt(alphasCumprodPrev[i]) / (1.0 - alphasCumprod[i]);
            posteriorMeanCoef2[i] = (1.0 - alphasCumprodPrev[i]) * Math.sqrt(alpha) / (1.0 - alphasCumprod[i]);
        }
        // The posterior variance is 0 at index 0; DiT clips its log by using index 1's value.
        posteriorLogVarianceClipped = new double[n];
        for (int i = 0; i < n; i++) {
            posteriorLogVarianceClipped[i] = Math.log(n > 1 && i == 0 ? posteriorVariance[1] : posteriorVariance[i]);
        }
    }

    /** DiT's default beta at the first timestep of a 1000-step schedule. */
    public static final double DEFAULT_BETA_START = 1e-4;

    /** DiT's default beta at the last timestep of a 1000-step schedule. */
    public static final double DEFAULT_BETA_END = 0.02;

    /**
     * DiT's linear schedule: {@code numTimesteps} betas evenly spaced from {@code 1e-4 * s} to
     * {@code 0.02 * s}, {@code s = 1000 / numTimesteps} (numpy {@code linspace}); the same as
     * {@code linear(numTimesteps, 1e-4, 0.02)}.
     */
    public static DiffusionSchedule linear(int numTimesteps) {
        return linear(numTimesteps, DEFAULT_BETA_START, DEFAULT_BETA_END);
    }

    /**
     * A linear schedule as DiT's {@code get_named_beta_schedule("linear", n)} builds it, with
     * other end points: {@code numTimesteps} betas evenly spaced from {@code betaStart * s} to
     * {@code betaEnd * s}, {@code s = 1000 / numTimesteps} (numpy {@code linspace}). The end
     * points are given for a 1000-step process, so for {@code numTimesteps = 1000} they are
     * the first and last beta exactly.
     *
     * @param numTimesteps number of training timesteps, at least 2
     * @param betaStart first beta before scaling, {@code > 0}
     * @param betaEnd last beta before scaling, {@code >= betaStart}; {@code betaEnd * s} must be {@code < 1}
     * @throws IllegalArgumentException if the betas do not describe a valid schedule
     */
    public static DiffusionSchedule linear(int numTimesteps, double betaStart, double betaEnd) {
        if (numTimesteps < 2) {
            throw new IllegalArgumentException("a linear schedule needs at least 2 timesteps, got " + numTimesteps);
        }
        if (!(betaStart > 0) || !(betaEnd >= betaStart) || !Double.isFinite(betaEnd)) {
            throw new IllegalArgumentException("betas must satisfy 0 < betaStart <= betaEnd, got betaStart " + betaStart
                    + " and betaEnd " + betaEnd);
        }
        double scale = 1000.0 / numTimesteps;
        double start = scale * betaStart;
        double end = scale * betaEnd;
        if (!(end < 1)) {
            throw new IllegalArgumentException("the last beta of " + numTimesteps + " timesteps, " + betaEnd + " * "
                    + scale + " = " + end + ", must be < 1");
        }
        double step = (end - start) / (numTimesteps - 1);
        double[] betas = new double[numTimesteps];
        int[] timesteps = new int[numTimesteps];
        for (int i = 0; i < numTimesteps; i++) {
            betas[i] = i * step + start;
            timesteps[i] = i;
        }
        betas[numTimesteps - 1] = end;
        return new DiffusionSchedule(betas, timesteps, false);
    }

    /**
     * DiT's {@code space_timesteps(numTimesteps, "count")} with one section: a fractional
     * stride {@code (numTimesteps - 1) / (count - 1)} accumulated in floating point and
     * rounded half to even at each step, as Python's {@code round} does.
     *
     * @return the kept timesteps, ascending
     */
    public static int[] spaceTimesteps(int numTimesteps, int count) {
        if (count < 1 || count > numTimesteps) {
            throw new IllegalArgumentException("cannot keep " + count + " of " + numTimesteps + " timesteps");
        }
        double fracStride = count <= 1 ? 1 : (double) (numTimesteps - 1) / (count - 1);
        double curIdx = 0.0;
        TreeSet<Integer> taken = new TreeSet<>();
        for (int k = 0; k < count; k++) {
            taken.add((int) Math.rint(curIdx));
            curIdx += fracStride;
        }
        return taken.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * Keeps {@code steps} timesteps ({@link #spaceTimesteps}) and rebuilds the betas from the
     * kept cumulative alphas.
     *
     * @throws IllegalStateException if this schedule is already respaced
     */
    public DiffusionSchedule respace(int steps) {
        if (respaced) {
            throw new IllegalStateException("respace the original schedule, not an already respaced one");
        }
        int[] kept = spaceTimesteps(betas.length, steps);
        double[] newBetas = new double[kept.length];
        double last = 1.0;
        for (int k = 0; k < kept.length; k++) {
            double abar = alphasCumprod[kept[k]];
            newBetas[k] = 1.0 - abar / last;
            last = abar;
        }
        return new DiffusionSchedule(newBetas, kept, true);
    }

    /** Number of steps (indices {@code 0..steps()-1}). */
    public int steps() {
        return betas.length;
    }

    /** The original timestep of index {@code i} (what the model is fed). */
    public int timestep(int i) {
        return timesteps[i];
    }

    /** Original timesteps of all indices (a copy). */
    public int[] timesteps() {
        return timesteps.clone();
    }

    /** {@code beta_i}. */
    public double beta(int i) {
        return betas[i];
    }

    /** All betas (a copy). */
    public double[] betas() {
        return betas.clone();
    }

    /** {@code abar_i}, the cumulative product of {@code 1 - beta}. */
    public double alphaCumprod(int i) {
        return alphasCumprod[i];
    }

    /** {@code abar_{i-1}}, with {@code 1} at index 0. */
    public double alphaCumprodPrev(int i) {
        return alphasCumprodPrev[i];
    }

    /** {@code sqrt(1 / abar_i)}. */
    public double sqrtRecipAlphaCumprod(int i) {
        return Math.sqrt(1.0 / alphasCumprod[i]);
    }

    /** {@code sqrt(1 / abar_i - 1)}. */
    public double sqrtRecipm1AlphaCumprod(int i) {
        return Math.sqrt(1.0 / alphasCumprod[i] - 1);
    }

    /** Variance of {@code q(x_{i-1} | x_i, x_0)}. */
    public double posteriorVariance(int i) {
        return posteriorVariance[i];
    }

    /** Log of the posterior variance, with index 1's value used at index 0. */
    public double posteriorLogVarianceClipped(int i) {
        return posteriorLogVarianceClipped[i];
    }

    /** Coefficient of {@code x_0} in the posterior mean. */
    public double posteriorMeanCoef1(int i) {
        return posteriorMeanCoef1[i];
    }

    /** Coefficient of {@code x_i} in the posterior mean. */
    public double posteriorMeanCoef2(int i) {
        return posteriorMeanCoef2[i];
    }

    @Override
    public String toString() {
        return "DiffusionSchedule[" + steps() + " steps" + (respaced ? ", timesteps " + Arrays.toString(timesteps) : "") + "]";
    }
}
