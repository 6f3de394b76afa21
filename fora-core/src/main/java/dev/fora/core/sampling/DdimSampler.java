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

    /** Deterministic DDIM (eta = 0) is the same elementwise update for every row at a step. */
    @Override
    public Optional<Object> rowWiseUpdate(SamplingStep step) {
        int i = step.loopIndex();
        DiffusionSchedule s = schedule();
        return Optional.of(List.of(DdimSampler.class, clipDenoised(), s.sqrtRecipAlphaCumprod(i), s.sqrtRecipm1AlphaCumprod(i),
                s.alphaCumprodPrev(i)));
    }

    @Override
    public <T extends Tensor> Stepper<T> newStepper(TensorOps<T> ops, NoiseSource noise) {
        return new Stepper<>() {
            @Override
            public T step(SamplingStep step, T x, T modelOutput) {
                int i = step.loopIndex();
                DiffusionSchedule s = schedule();
                T x0 = predictStart(ops, i, x, eps(ops, x, modelOutput));
                double a = s.sqrtRecipAlphaCumprod(i);
                double b = s.sqrtRecipm1AlphaCumprod(i);
                T epsFromX0 = ops.linearCombination(new double[] {a / b, -1.0 / b}, List.of(x, x0));
                double prev = s.alphaCumprodPrev(i);
                return ops.linearCombination(new double[] {Math.sqrt(prev), Math.sqrt(1.0 - prev)}, List.of(x0, epsFromX0));
            }

            @Override
            public void close() {
            }
        };
    }
}
