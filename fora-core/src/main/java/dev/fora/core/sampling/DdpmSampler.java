package dev.fora.core.sampling;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import java.util.List;

/**
 * Ancestral DDPM sampling as in DiT's {@code p_sample}, with the learned-range variance of
 * {@code learn_sigma} models:
 * <pre>
 *   x0      = clip(sqrt(1/abar_i) x - sqrt(1/abar_i - 1) eps)
 *   mean    = coef1_i x0 + coef2_i x
 *   frac    = (v + 1) / 2
 *   logVar  = frac log(beta_i) + (1 - frac) posteriorLogVarianceClipped_i
 *   x_{i-1} = mean + exp(logVar / 2) z          (no noise at i = 0)
 * </pre>
 * If the model outputs only eps, the fixed variance {@code posteriorLogVarianceClipped_i} is
 * used. One noise draw per step with {@code i > 0}.
 */
public final class DdpmSampler extends DiffusionSampler {

    /** DDPM over {@code schedule}, clipping {@code x_0}. */
    public DdpmSampler(DiffusionSchedule schedule) {
        this(schedule, true);
    }

    /** DDPM over {@code schedule}. */
    public DdpmSampler(DiffusionSchedule schedule, boolean clipDenoised) {
        super(schedule, clipDenoised);
    }

    @Override
    public <T extends Tensor> Stepper<T> newStepper(TensorOps<T> ops, NoiseSource noise) {
        return new Stepper<>() {
            @Override
            public T step(SamplingStep step, T x, T modelOutput) {
                return ddpmStep(ops, noise, step.loopIndex(), x, modelOutput);
            }

            @Override
            public void close() {
            }
        };
    }

    private <T extends Tensor> T ddpmStep(TensorOps<T> ops, NoiseSource noise, int i, T x, T out) {
        DiffusionSchedule s = schedule();
        int c = latentChannels(x, out);
        T eps = eps(ops, x, out);
        T x0 = predictStart(ops, i, x, eps);
        T mean = ops.linearCombination(new double[] {s.posteriorMeanCoef1(i), s.posteriorMeanCoef2(i)}, List.of(x0, x));
        if (i == 0) {
            return mean;
        }
        double minLog = s.posteriorLogVarianceClipped(i);
        double maxLog = Math.log(s.beta(i));
        long[] shape = x.shape();
        T z = ops.fromFloats(shape, noise.next(shape));
        if (out.shape()[1] == c) {
            return ops.linearCombination(new double[] {1.0, Math.exp(0.5 * minLog)}, List.of(mean, z));
        }
        T v = ops.sliceChannels(out, c, 2L * c);
        // 0.5 * logVar = 0.5 * ((v+1)/2 * maxLog + (1 - (v+1)/2) * minLog) = v * (max-min)/4 + (max+min)/4
        T std = ops.exp(ops.affine(v, 0.25 * (maxLog - minLog), 0.25 * (maxLog + minLog)));
        return ops.add(mean, ops.mul(std, z));
    }
}
