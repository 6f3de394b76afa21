package dev.fora.core.sampling;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.List;

/**
 * DPM-Solver++(2M) (Lu et al. 2022): the multistep second-order solver in data prediction,
 * on the discrete respaced schedule with {@code alpha_i = sqrt(abar_i)},
 * {@code sigma_i = sqrt(1 - abar_i)}, {@code lambda_i = log(alpha_i / sigma_i)}. Going from
 * index {@code i} (s) to {@code i-1} (t), with {@code h = lambda_t - lambda_s}:
 * <pre>
 *   x0_s = clip(sqrt(1/abar_s) x - sqrt(1/abar_s - 1) eps)        (clipped like DDIM)
 *   D    = x0_s                                                    (first step)
 *   D    = (1 + 1/(2r)) x0_s - 1/(2r) x0_prev,  r = h_prev / h     (later steps)
 *   x_t  = (sigma_t / sigma_s) x - alpha_t (exp(-h) - 1) D
 * </pre>
 * The last step (to {@code abar = 1}, {@code sigma = 0}) is first order, which returns
 * {@code x0_s} (as DDIM does). The clipped {@code x_0} is what enters the history, so
 * clipping acts consistently on both terms. Deterministic: consumes no noise after
 * {@code x_T}.
 */
public final class DpmSolverPlusPlusSampler extends DiffusionSampler {

    /** DPM-Solver++(2M) over {@code schedule}, clipping {@code x_0}. */
    public DpmSolverPlusPlusSampler(DiffusionSchedule schedule) {
        this(schedule, true);
    }

    /** DPM-Solver++(2M) over {@code schedule}. */
    public DpmSolverPlusPlusSampler(DiffusionSchedule schedule, boolean clipDenoised) {
        super(schedule, clipDenoised);
    }

    @Override
    public <T extends Tensor> Stepper<T> newStepper(TensorOps<T> ops, NoiseSource noise) {
        return new MultistepStepper<>(ops);
    }

    private static double lambda(double abar) {
        return 0.5 * Math.log(abar / (1.0 - abar));
    }

    private final class MultistepStepper<T extends Tensor> implements Stepper<T> {
        private final TensorOps<T> ops;
        private final TensorScope history;
        private T previousX0;
        private double previousH;

        MultistepStepper(TensorOps<T> ops) {
            this.ops = ops;
            this.history = ops.newDetachedScope();
        }

        @Override
        public T step(SamplingStep step, T x, T modelOutput) {
            int i = step.loopIndex();
            DiffusionSchedule s = schedule();
            T x0 = predictStart(ops, i, x, eps(ops, x, modelOutput));
            if (i == 0) {
                return x0;
            }
            double abarS = s.alphaCumprod(i);
            double abarT = s.alphaCumprodPrev(i);
            double sigmaS = Math.sqrt(1.0 - abarS);
            double sigmaT = Math.sqrt(1.0 - abarT);
            double alphaT = Math.sqrt(abarT);
            double h = lambda(abarT) - lambda(abarS);
            double phi = -alphaT * Math.expm1(-h); // -alpha_t (exp(-h) - 1)
            T next;
            if (previousX0 == null) {
                next = ops.linearCombination(new double[] {sigmaT / sigmaS, phi}, List.of(x, x0));
            } else {
                double r = previousH / h;
                double c = 1.0 / (2.0 * r);
                next = ops.linearCombination(new double[] {sigmaT / sigmaS, phi * (1.0 + c), -phi * c},
                        List.of(x, x0, previousX0));
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
    }
}
