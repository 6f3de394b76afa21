package dev.fora.core.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.fora.core.model.ClassLabels;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class SamplingLoopTest {

    private final ArrayOps ops = new ArrayOps();
    private final long[] shape = {2, 3, 2, 2};

    @Test
    void loopFeedsOriginalTimestepsCountingDownAndLeavesOnlyTheResult() {
        List<Double> timesteps = new ArrayList<>();
        List<Integer> steps = new ArrayList<>();
        DenoisingModel<ArrayTensor> zeroEps = (step, x, conditioning) -> {
            timesteps.add(step.timestep());
            steps.add(step.step());
            assertThat(step.loopIndex()).isEqualTo(49 - step.step());
            assertThat(step.totalSteps()).isEqualTo(50);
            return ops.fromFloats(x.shape(), new float[(int) x.size()]);
        };
        DdimSampler sampler = new DdimSampler(DiffusionSchedule.linear(1000).respace(50), false);
        ArrayTensor out = sampler.sample(ops, zeroEps, shape, ClassLabels.of(0, 1), new SeededGaussianNoise(3));
        assertThat(timesteps).hasSize(50);
        assertThat(timesteps.subList(0, 4)).containsExactly(999.0, 979.0, 958.0, 938.0);
        assertThat(timesteps.subList(46, 50)).containsExactly(61.0, 41.0, 20.0, 0.0);
        assertThat(steps.get(0)).isZero();
        assertThat(ops.liveTensors()).isEqualTo(1);
        // with eps = 0 and no clipping, each DDIM step scales x by sqrt(abar_prev / abar): x_T / sqrt(abar_T) overall
        float[] start = new SeededGaussianNoise(3).next(shape);
        DiffusionSchedule r = sampler.schedule();
        float[] result = ops.toFloats(out);
        for (int k = 0; k < start.length; k++) {
            double expected = start[k] / Math.sqrt(r.alphaCumprod(49));
            assertThat((double) result[k]).isCloseTo(expected, within(1e-4 * Math.abs(expected) + 1e-6));
        }
        out.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void ddpmConsumesTheInitialNoiseThenOneDrawPerStepExceptTheLast() {
        int k = 5;
        int count = (int) (shape[0] * shape[1] * shape[2] * shape[3]);
        List<float[]> draws = new ArrayList<>();
        SeededGaussianNoise source = new SeededGaussianNoise(9);
        for (int i = 0; i < k; i++) {
            draws.add(source.next(shape));
        }
        ReplayNoise replay = new ReplayNoise(draws);
        DenoisingModel<ArrayTensor> model = (step, x, conditioning) -> ops.fromFloats(new long[] {2, 6, 2, 2}, new float[2 * count]);
        DdpmSampler sampler = new DdpmSampler(DiffusionSchedule.linear(1000).respace(k));
        sampler.sample(ops, model, shape, ClassLabels.of(0, 0), replay).close();
        assertThat(replay.remaining()).isZero();
        // the same run with seeded noise of the same seed gives the same samples
        float[] a = ops.toFloats(sampler.sample(ops, model, shape, ClassLabels.of(0, 0), new ReplayNoise(draws)));
        float[] b = ops.toFloats(sampler.sample(ops, model, shape, ClassLabels.of(0, 0), new SeededGaussianNoise(9)));
        assertThat(a).containsExactly(b);
    }

    @Test
    void conditioningMustMatchTheBatch() {
        DdimSampler sampler = new DdimSampler(DiffusionSchedule.linear(1000).respace(3));
        assertThatThrownBy(() -> sampler.sample(ops, (s, x, y) -> x, shape, ClassLabels.of(1), new SeededGaussianNoise(1)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("latent batch 2 and 1 conditioning rows");
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void seededNoiseIsDeterministicAndStandardNormal() {
        long[] big = {100_000};
        float[] a = new SeededGaussianNoise(11).next(big);
        assertThat(new SeededGaussianNoise(11).next(big)).containsExactly(a);
        assertThat(new SeededGaussianNoise(12).next(new long[] {4})).isNotEqualTo(new SeededGaussianNoise(11).next(new long[] {4}));
        double mean = 0;
        double sq = 0;
        for (float v : a) {
            mean += v;
            sq += v * v;
        }
        mean /= a.length;
        assertThat(mean).isCloseTo(0, within(0.02));
        assertThat(sq / a.length - mean * mean).isCloseTo(1, within(0.02));
    }

    @Test
    void replayNoiseChecksSizesAndRunningOut() {
        ReplayNoise replay = new ReplayNoise(List.of(new float[] {1, 2}));
        assertThatThrownBy(() -> replay.next(new long[] {3})).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("wrong size of recorded draw 0: expected 3 values for a draw of shape [3], recorded 2");
        assertThatThrownBy(() -> replay.next(new long[] {1, 3})).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("shape [1, 3]");
        // a rejected request consumes nothing
        assertThat(replay.remaining()).isEqualTo(1);
        assertThat(replay.next(new long[] {1, 2})).containsExactly(1, 2);
        assertThatThrownBy(() -> replay.next(new long[] {2})).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("exhausted");
    }
}
