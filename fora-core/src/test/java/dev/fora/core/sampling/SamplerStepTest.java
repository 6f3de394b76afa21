package dev.fora.core.sampling;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.tensor.TensorScope;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Each sampler step against the formula re-derived here on plain doubles. */
class SamplerStepTest {

    private final ArrayOps ops = new ArrayOps();
    private final DiffusionSchedule schedule = DiffusionSchedule.linear(1000).respace(10);
    private static final long[] X_SHAPE = {1, 2, 1, 2};
    private static final long[] OUT_SHAPE = {1, 4, 1, 2};
    private final float[] x = {0.8f, -1.3f, 2.1f, 0.05f};
    private final float[] eps = {0.4f, -0.9f, -1.7f, 0.3f};
    private final float[] v = {-0.6f, 0.2f, 0.9f, -1.0f};
    private final float[] z = {0.7f, -0.2f, 1.4f, -2.2f};

    /** abar from the betas, computed here rather than taken from the schedule. */
    private double abar(int i) {
        double prod = 1;
        for (int j = 0; j <= i; j++) {
            prod *= 1 - schedule.beta(j);
        }
        return prod;
    }

    private double abarPrev(int i) {
        return i == 0 ? 1 : abar(i - 1);
    }

    private static double clip(double value) {
        return Math.max(-1, Math.min(1, value));
    }

    private double[] x0(int i, float[] eps) {
        double a = abar(i);
        double[] out = new double[x.length];
        for (int k = 0; k < x.length; k++) {
            out[k] = clip(Math.sqrt(1 / a) * x[k] - Math.sqrt(1 / a - 1) * eps[k]);
        }
        return out;
    }

    private float[] modelOutput(float[] eps) {
        // channels: eps0, eps1, v0, v1; each channel holds 2 values (H=1, W=2)
        return new float[] {eps[0], eps[1], eps[2], eps[3], v[0], v[1], v[2], v[3]};
    }

    /**
     * The DDPM step from {@code x} at step {@code i > 0} given the predicted {@code x0}: the
     * posterior mean plus noise {@code z} scaled by the learned-range variance from {@code v}.
     */
    private double[] ddpmLearnedRangeStep(int i, double[] x0) {
        double a = abar(i);
        double ap = abarPrev(i);
        double beta = 1 - a / ap;
        double postVar = beta * (1 - ap) / (1 - a);
        double[] expected = new double[4];
        for (int k = 0; k < 4; k++) {
            double mean = beta * Math.sqrt(ap) / (1 - a) * x0[k] + (1 - ap) * Math.sqrt(1 - beta) / (1 - a) * x[k];
            double frac = (v[k] + 1) / 2.0;
            double logVar = frac * Math.log(beta) + (1 - frac) * Math.log(postVar);
            expected[k] = mean + Math.exp(0.5 * logVar) * z[k];
        }
        return expected;
    }

    /** The sampler step that reads respaced index (loop index) {@code i}. */
    private SamplingStep at(int i) {
        return SamplingStep.of(schedule, schedule.steps() - 1 - i);
    }

    private float[] run(DiffusionSampler sampler, int i, float[] eps, NoiseSource noise) {
        try (TensorScope scope = ops.openScope();
                DiffusionSampler.Stepper<ArrayTensor> stepper = sampler.newStepper(ops, noise)) {
            return ops.toFloats(stepper.step(at(i), ops.fromFloats(X_SHAPE, x), ops.fromFloats(OUT_SHAPE, modelOutput(eps))));
        }
    }

    private static void assertClose(float[] actual, double[] expected) {
        assertThat(actual).hasSameSizeAs(expected);
        for (int k = 0; k < expected.length; k++) {
            assertThat((double) actual[k]).as("element %d", k).isCloseTo(expected[k],
                    org.assertj.core.api.Assertions.within(2e-5 * Math.max(1, Math.abs(expected[k]))));
        }
    }

    @Test
    void ddpmStepWithLearnedRangeVariance() {
        int i = 6;
        double[] expected = ddpmLearnedRangeStep(i, x0(i, eps));
        ReplayNoise noise = new ReplayNoise(List.of(z));
        assertClose(run(new DdpmSampler(schedule), i, eps, noise), expected);
        assertThat(noise.remaining()).isZero();
    }

    @Test
    void ddpmLastStepIsThePosteriorMeanWithoutNoise() {
        double a = abar(0);
        double[] x0 = x0(0, eps);
        double[] expected = new double[4];
        for (int k = 0; k < 4; k++) {
            // abar_prev = 1: coef1 = beta / (1 - abar) = 1, coef2 = 0
            expected[k] = 1.0 * x0[k] + 0 * a;
        }
        ReplayNoise noNoise = new ReplayNoise(List.of());
        assertClose(run(new DdpmSampler(schedule), 0, eps, noNoise), expected);
    }

    @Test
    void ddpmWithoutClippingUsesTheRawPrediction() {
        int i = 9;
        double a = abar(i);
        double[] rawX0 = new double[4];
        for (int k = 0; k < 4; k++) {
            rawX0[k] = Math.sqrt(1 / a) * x[k] - Math.sqrt(1 / a - 1) * eps[k];
        }
        double[] expected = ddpmLearnedRangeStep(i, rawX0);
        assertClose(run(new DdpmSampler(schedule, false), i, eps, new ReplayNoise(List.of(z))), expected);
    }

    @Test
    void ddimStepEtaZero() {
        int i = 4;
        double a = abar(i);
        double ap = abarPrev(i);
        double[] x0 = x0(i, eps);
        double[] expected = new double[4];
        for (int k = 0; k < 4; k++) {
            double epsFromX0 = (Math.sqrt(1 / a) * x[k] - x0[k]) / Math.sqrt(1 / a - 1);
            expected[k] = Math.sqrt(ap) * x0[k] + Math.sqrt(1 - ap) * epsFromX0;
        }
        assertClose(run(new DdimSampler(schedule), i, eps, new ReplayNoise(List.of())), expected);
        // the last DDIM step returns the clipped x0
        assertClose(run(new DdimSampler(schedule), 0, eps, new ReplayNoise(List.of())), x0(0, eps));
    }

    @Test
    void dpmSolverPlusPlusTwoM() {
        float[] eps2 = {-0.2f, 0.5f, 0.1f, 1.1f};
        DiffusionSampler sampler = new DpmSolverPlusPlusSampler(schedule);
        float[] first;
        float[] second;
        try (TensorScope scope = ops.openScope();
                DiffusionSampler.Stepper<ArrayTensor> stepper = sampler.newStepper(ops, new ReplayNoise(List.of()))) {
            ArrayTensor x7 = ops.fromFloats(X_SHAPE, x);
            ArrayTensor x6 = stepper.step(at(7), x7, ops.fromFloats(OUT_SHAPE, modelOutput(eps)));
            first = ops.toFloats(x6);
            second = ops.toFloats(stepper.step(at(6), x6, ops.fromFloats(OUT_SHAPE, modelOutput(eps2))));
        }
        // step 1 (first order) from s = 7 to t = 6
        double[] x0s = x0(7, eps);
        double lambda7 = 0.5 * Math.log(abar(7) / (1 - abar(7)));
        double lambda6 = 0.5 * Math.log(abar(6) / (1 - abar(6)));
        double lambda5 = 0.5 * Math.log(abar(5) / (1 - abar(5)));
        double h1 = lambda6 - lambda7;
        double[] expected1 = new double[4];
        for (int k = 0; k < 4; k++) {
            expected1[k] = Math.sqrt(1 - abar(6)) / Math.sqrt(1 - abar(7)) * x[k]
                    - Math.sqrt(abar(6)) * (Math.exp(-h1) - 1) * x0s[k];
        }
        assertClose(first, expected1);
        // the first-order step is exactly DDIM
        assertClose(run(new DdimSampler(schedule), 7, eps, new ReplayNoise(List.of())), expected1);
        // step 2 (second order) from s = 6 to t = 5
        double h2 = lambda5 - lambda6;
        double r = h1 / h2;
        double[] expected2 = new double[4];
        for (int k = 0; k < 4; k++) {
            double x0 = clip(Math.sqrt(1 / abar(6)) * first[k] - Math.sqrt(1 / abar(6) - 1) * eps2[k]);
            double d = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * x0s[k];
            expected2[k] = Math.sqrt(1 - abar(5)) / Math.sqrt(1 - abar(6)) * first[k]
                    - Math.sqrt(abar(5)) * (Math.exp(-h2) - 1) * d;
        }
        assertClose(second, expected2);
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void samplersAcceptEpsOnlyOutput() {
        try (DiffusionSampler.Stepper<ArrayTensor> stepper = new DdimSampler(schedule).newStepper(ops, new ReplayNoise(List.of()))) {
            float[] out = ops.toFloats(stepper.step(at(0), ops.fromFloats(X_SHAPE, x), ops.fromFloats(X_SHAPE, eps)));
            assertClose(out, x0(0, eps));
        }
    }

    @Test
    void onlyDdimDeclaresARowWiseUpdateItsRuleSharedByStepCountsAndItsCoefficientsThoseOfTheStep() {
        DdimSampler a = new DdimSampler(schedule);
        DiffusionSampler.RowWiseUpdate at3 = a.rowWiseUpdate(a.stepAt(3)).orElseThrow();
        DiffusionSchedule other = DiffusionSchedule.linear(1000).respace(20);
        assertThat(new DdimSampler(other).rowWiseUpdate(new DdimSampler(other).stepAt(3)).orElseThrow().rule())
                .isEqualTo(at3.rule());
        assertThat(a.rowWiseUpdate(a.stepAt(4)).orElseThrow().coefficients()).isNotEqualTo(at3.coefficients());
        assertThat(new DdimSampler(schedule, !a.clipDenoised()).rowWiseUpdate(a.stepAt(3)).orElseThrow().rule())
                .isNotEqualTo(at3.rule());
        // DDPM draws noise per image and DPM-Solver++ keeps history: each run steps alone
        assertThat(new DdpmSampler(schedule).rowWiseUpdate(a.stepAt(3))).isEmpty();
        assertThat(new DpmSolverPlusPlusSampler(schedule).rowWiseUpdate(a.stepAt(3))).isEmpty();
    }

    @Test
    void theDdimRuleStepsEachRowAtItsOwnStepAsItsSamplerAlone() {
        DdimSampler ten = new DdimSampler(schedule);
        DdimSampler twenty = new DdimSampler(DiffusionSchedule.linear(1000).respace(20));
        float[] other = {-0.3f, 1.9f, 0.6f, -0.8f};
        ArrayTensor xs = ops.concatBatch(List.of(ops.fromFloats(X_SHAPE, x), ops.fromFloats(X_SHAPE, other)));
        ArrayTensor outs = ops.concatBatch(List.of(ops.fromFloats(OUT_SHAPE, modelOutput(eps)),
                ops.fromFloats(OUT_SHAPE, modelOutput(v))));
        DiffusionSampler.RowWiseUpdate first = ten.rowWiseUpdate(ten.stepAt(2)).orElseThrow();
        DiffusionSampler.RowWiseUpdate second = twenty.rowWiseUpdate(twenty.stepAt(13)).orElseThrow();
        float[] together = ops.toFloats(first.rule().apply(ops, new double[][] {first.coefficients(), second.coefficients()},
                xs, outs));
        float[] alone;
        try (DiffusionSampler.Stepper<ArrayTensor> a = ten.newStepper(ops, new ReplayNoise(List.of()));
                DiffusionSampler.Stepper<ArrayTensor> b = twenty.newStepper(ops, new ReplayNoise(List.of()))) {
            alone = ops.toFloats(ops.concatBatch(List.of(
                    a.step(ten.stepAt(2), ops.fromFloats(X_SHAPE, x), ops.fromFloats(OUT_SHAPE, modelOutput(eps))),
                    b.step(twenty.stepAt(13), ops.fromFloats(X_SHAPE, other), ops.fromFloats(OUT_SHAPE, modelOutput(v))))));
        }
        assertThat(together).containsExactly(alone);
        assertThat(Arrays.copyOf(together, 4)).as("the rows' steps differ").isNotEqualTo(Arrays.copyOfRange(together, 4, 8));
    }
}
