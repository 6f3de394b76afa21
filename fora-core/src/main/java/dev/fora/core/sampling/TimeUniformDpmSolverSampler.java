package dev.fora.core.sampling;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.List;

/**
 * DPM-Solver++(2M) as the official DPM-Solver code runs it for a discrete-time model, and as
 * PixArt-α samples with it ({@code DPMS} in its {@code diffusion/dpm_solver.py}:
 * {@code NoiseScheduleVP('discrete')}, {@code skip_type='time_uniform'},
 * {@code method='multistep'}, order 2, {@code algorithm_type='dpmsolver++'}):
 * <ul>
 * <li>continuous times {@code t_j = 1 - j (1 - 1/N) / K}, {@code j = 0..K}, over the {@code N}
 *     training steps of {@code schedule}, whose step {@code n} sits at {@code t = (n + 1) / N};</li>
 * <li>{@code log alpha_t} interpolated linearly in {@code t} between the steps' values
 *     {@code 0.5 * sum log(1 - beta)} (stored as float32, as there), {@code sigma_t = sqrt(1 - alpha_t^2)},
 *     {@code lambda_t = log alpha_t - log sigma_t};</li>
 * <li>the model fed the fractional timestep {@code (t_j - 1/N) * 1000}: 999, 949.05, ... for K = 20;</li>
 * <li>from {@code t_j} to {@code t_{j+1}} with {@code h = lambda_{j+1} - lambda_j} and the data
 *     prediction {@code x0_j = (x - sigma_j eps) / alpha_j} (not clipped):
 *     {@code x_{j+1} = sigma_{j+1}/sigma_j x - alpha_{j+1} (e^{-h} - 1) D}, {@code D = x0_j} at the first
 *     step (and at the last when {@code K < 10}, the official {@code lower_order_final}), else
 *     {@code D = (1 + 1/(2r)) x0_j - 1/(2r) x0_{j-1}}, {@code r = h_{j-1} / h};</li>
 * <li>the last step ends at {@code t = 1/N} (sigma = sqrt(beta_0)), not at zero noise.</li>
 * </ul>
 * {@link DpmSolverPlusPlusSampler} is the same solver on DiT's respaced discrete grid. Consumes no
 * noise after {@code x_T}.
 */
public final class TimeUniformDpmSolverSampler extends DiffusionSampler {

    private final int steps;
    private final double[] modelTime;
    private final double[] alpha;
    private final double[] sigma;
    private final double[] lambda;

    /**
     * @param trainingSchedule the model's training schedule ({@code N} steps, not respaced)
     * @param steps sampler steps {@code K >= 1}
     */
    public TimeUniformDpmSolverSampler(DiffusionSchedule trainingSchedule, int steps) {
        super(trainingSchedule, false);
        if (steps < 1) {
            throw new IllegalArgumentException("steps must be >= 1, got " + steps);
        }
        int n = trainingSchedule.steps();
        float[] logAlpha = new float[n];
        float[] keys = new float[n];
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += Math.log(1.0 - trainingSchedule.beta(i));
            logAlpha[i] = (float) (0.5 * cum);
            keys[i] = (float) ((i + 1) / (double) n);
        }
        this.steps = steps;
        this.modelTime = new double[steps + 1];
        this.alpha = new double[steps + 1];
        this.sigma = new double[steps + 1];
        this.lambda = new double[steps + 1];
        double tEnd = 1.0 / n;
        for (int j = 0; j <= steps; j++) {
            double t = (float) (j == steps ? tEnd : 1.0 + j * ((tEnd - 1.0) / steps));
            double la = interpolate(t, keys, logAlpha);
            alpha[j] = Math.exp(la);
            sigma[j] = Math.sqrt(1.0 - Math.exp(2.0 * la));
            lambda[j] = la - Math.log(sigma[j]);
            modelTime[j] = (t - tEnd) * 1000.0;
        }
    }

    /** Piecewise-linear {@code y(x)} through the keys, extended linearly beyond the ends. */
    private static double interpolate(double x, float[] xs, float[] ys) {
        int k = 0;
        while (k < xs.length - 2 && x > xs[k + 1]) {
            k++;
        }
        return ys[k] + (x - xs[k]) * ((double) ys[k + 1] - ys[k]) / ((double) xs[k + 1] - xs[k]);
    }

    @Override
    public int steps() {
        return steps;
    }

    /** The timestep the model is fed at step {@code j}: {@code (t_j - 1/N) * 1000}. */
    public double modelTime(int step) {
        return modelTime[step];
    }

    @Override
    public SamplingStep stepAt(int step) {
        return new SamplingStep(step, steps, modelTime[step]);
    }

    @Override
    public <T extends Tensor> Stepper<T> newStepper(TensorOps<T> ops, NoiseSource noise) {
        return new Stepper<>() {
            private final TensorScope history = ops.newDetachedScope();
            private T previousX0;
            private double previousH;

            @Override
            public T step(SamplingStep step, T x, T modelOutput) {
                int j = step.step();
                T x0 = ops.linearCombination(new double[] {1.0 / alpha[j], -sigma[j] / alpha[j]},
                        List.of(x, eps(ops, x, modelOutput)));
                double h = lambda[j + 1] - lambda[j];
                double phi = -alpha[j + 1] * Math.expm1(-h);
                boolean firstOrder = previousX0 == null || (steps < 10 && j == steps - 1);
                T next;
                if (firstOrder) {
                    next = ops.linearCombination(new double[] {sigma[j + 1] / sigma[j], phi}, List.of(x, x0));
                } else {
                    double c = 1.0 / (2.0 * (previousH / h));
                    next = ops.linearCombination(new double[] {sigma[j + 1] / sigma[j], phi * (1.0 + c), -phi * c},
                            List.of(x, x0, previousX0));
                }
                if (previousX0 != null) {
                    previousX0.close();
                }
                previousX0 = ops.attach(x0, history);
                previousH = h;
                return next;
            }

            @Override
            public void close() {
                history.close();
                previousX0 = null;
            }
        };
    }
}
