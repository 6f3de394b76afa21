package dev.fora.core.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.fora.core.model.ClassLabels;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** PixArt-α's DPMS grid: continuous uniform time, fractional model timesteps, last step to t = 1/N. */
class TimeUniformDpmSolverSamplerTest {

    private final DiffusionSchedule training = DiffusionSchedule.linear(1000);

    @Test
    void feedsTheModelTheOfficialFractionalTimesteps() {
        TimeUniformDpmSolverSampler s = new TimeUniformDpmSolverSampler(training, 20);
        assertThat(s.steps()).isEqualTo(20);
        assertThat(s.modelTime(0)).isCloseTo(999.0, within(1e-3));
        assertThat(s.modelTime(1)).isCloseTo(949.05, within(1e-3)); // (1 - 0.999/20 - 0.001) * 1000
        assertThat(s.modelTime(19)).isCloseTo(49.95, within(1e-3));
        assertThat(s.modelTime(20)).isCloseTo(0.0, within(1e-6));

        ArrayOps ops = new ArrayOps();
        List<Double> fed = new ArrayList<>();
        List<Integer> steps = new ArrayList<>();
        DenoisingModel<ArrayTensor> zero = (step, x, c) -> {
            fed.add(step.timestep());
            steps.add(step.step());
            return ops.scale(x, 0.0);
        };
        float[] start = {1f, -2f, 0.5f, 3f};
        ArrayTensor out = s.sample(ops, zero, new long[] {1, 1, 2, 2}, ClassLabels.of(0), shape -> start.clone());
        assertThat(steps).containsExactly(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19);
        assertThat(fed.get(1)).isCloseTo(949.05, within(1e-3));
        // eps = 0: x0 = x / alpha at every step and the ODE keeps x0 fixed, so x_end = alpha(1/N) * x_T / alpha(1)
        double alphaEnd = Math.sqrt(1 - training.beta(0));
        double alphaStart = Math.sqrt(training.alphaCumprod(999));
        float[] x = ops.toFloats(out);
        for (int i = 0; i < x.length; i++) {
            assertThat((double) x[i]).isCloseTo(start[i] * alphaEnd / alphaStart, within(2e-3 * Math.abs(start[i] / alphaStart)));
        }
    }
}
