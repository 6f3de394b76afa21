package dev.fora.core.sampling;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import java.util.List;
import java.util.Optional;

/**
 * Deterministic DDIM ({@code eta = 0}) as in DiT's {@code ddim_sample}: eps is re-derived
 * from the (clipped) predicted {@code x_0}, then
 * <pre>
 *   x0      = clip(sqrt(1/abar_i) x - sqrt(1/abar_i - 1) eps)
 *   eps'    = (sqrt(1/abar_i) x - x0) / sqrt(1/abar_i - 1)
 *   x_{i-1} = sqrt(abar_{i-1}) x0 + sqrt(1 - abar_{i-1}) eps'       (abar_{-1} = 1)
 * </pre>
 * A learned variance channel, if present, is ignored. Consumes no noise after {@code x_T}.
 */
public final class DdimSampler extends DiffusionSampler {

    /** DDIM over {@code schedule}, clipping {@code x_0}. */
    public DdimSampler(DiffusionSchedule schedule) {
        this(schedule, true);
    }

    /** DDIM over {@code schedule}. */
    public DdimSampler(DiffusionSchedule schedule, boolean clipDenoised) {
        super(schedule, clipDenoised);
    }

    /**
     * Deterministic DDIM (eta = 0) treats each row on its own: its step enters through
     * {@code sqrt(1/abar_i)}, {@code sqrt(1/abar_i - 1)} and {@code abar_{i-1}}, so runs of any step
     * counts step together, whatever their steps, when they clip alike.
     */
    @Override
    public Optional<RowWiseUpdate> rowWiseUpdate(SamplingStep step) {
        int i = step.loopIndex();
        DiffusionSchedule s = schedule();
        return Optional.of(new RowWiseUpdate(new Rule(clipDenoised()),
                new double[] {s.sqrtRecipAlphaCumprod(i), s.sqrtRecipm1AlphaCumprod(i), s.alphaCumprodPrev(i)}));
    }

    @Override
    public <T extends Tensor> Stepper<T> newStepper(TensorOps<T> ops, NoiseSource noise) {
        return new Stepper<>() {
            @Override
            public T step(SamplingStep step, T x, T modelOutput) {
                RowWiseUpdate update = rowWiseUpdate(step).orElseThrow();
                return update.rule().apply(ops, new double[][] {update.coefficients()}, x, modelOutput);
            }

            @Override
            public void close() {
            }
        };
    }

    /** The DDIM update, each row with its step's {@code (sqrt(1/abar_i), sqrt(1/abar_i - 1), abar_{i-1})}. */
    private record Rule(boolean clipDenoised) implements RowWiseRule {

        @Override
        public <T extends Tensor> T apply(TensorOps<T> ops, double[][] coefficients, T x, T modelOutput) {
            int n = coefficients.length;
            double[] a = new double[n];
            double[] b = new double[n];
            double[] epsOfX = new double[n];
            double[] epsOfX0 = new double[n];
            double[] keep = new double[n];
            double[] toward = new double[n];
            for (int r = 0; r < n; r++) {
                a[r] = coefficients[r][0];
                b[r] = coefficients[r][1];
                double prev = coefficients[r][2];
                epsOfX[r] = a[r] / b[r];
                epsOfX0[r] = -1.0 / b[r];
                keep[r] = Math.sqrt(prev);
                toward[r] = Math.sqrt(1.0 - prev);
            }
            T x0 = predictStart(ops, a, b, clipDenoised, x, eps(ops, x, modelOutput));
            T epsFromX0 = ops.rowLinearCombination(new double[][] {epsOfX, epsOfX0}, List.of(x, x0));
            return ops.rowLinearCombination(new double[][] {keep, toward}, List.of(x0, epsFromX0));
        }
    }
}
