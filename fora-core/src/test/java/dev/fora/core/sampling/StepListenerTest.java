package dev.fora.core.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.engine.Generation;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.testing.SyntheticDiT;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** The sampler's step listener: every step once, in order, after the step; the result does not change. */
class StepListenerTest {

    private static final int K = 12;

    private final ArrayOps ops = new ArrayOps();
    private final SyntheticDiT model = new SyntheticDiT(ops, 5);
    private final DiTConfig config = model.config();
    private final long[] shape = {2, config.inChannels(), config.inputSize(), config.inputSize()};
    private final ClassLabels labels = ClassLabels.of(1, 7);

    /** One cached, guided generation; {@code listener} null means the overload without one. */
    private float[] generate(DiffusionSampler sampler, StepListener listener, List<String> events) {
        try (Generation<ArrayTensor> g = Generation.builder(model, CachePolicies.parse("fora:3")).steps(K).images(2)
                .guided(true).open()) {
            DenoisingModel<ArrayTensor> recording = (step, x, y) -> {
                events.add("predict " + step.step());
                return g.predict(step, x, y);
            };
            DenoisingModel<ArrayTensor> guided = new ClassifierFreeGuidance<>(ops, recording, 1.5, model.unconditional());
            NoiseSource noise = new SeededGaussianNoise(21);
            try (ArrayTensor out = listener == null ? sampler.sample(ops, guided, shape, labels, noise)
                    : sampler.sample(ops, guided, shape, labels, noise, listener)) {
                return ops.toFloats(out);
            }
        }
    }

    @Test
    void listenerSeesEveryStepOnceInOrderAndTheImagesAreBitIdentical() {
        DiffusionSchedule schedule = DiffusionSchedule.linear(1000).respace(K);
        List<Function<DiffusionSchedule, DiffusionSampler>> samplers = List.of(DdimSampler::new, DdpmSampler::new,
                DpmSolverPlusPlusSampler::new);
        for (Function<DiffusionSchedule, DiffusionSampler> make : samplers) {
            DiffusionSampler sampler = make.apply(schedule);
            String name = sampler.getClass().getSimpleName();
            float[] plain = generate(sampler, null, new ArrayList<>());

            List<String> events = new ArrayList<>();
            List<Integer> steps = new ArrayList<>();
            Thread caller = Thread.currentThread();
            float[] listened = generate(sampler, (step, total) -> {
                assertThat(total).isEqualTo(K);
                assertThat(Thread.currentThread()).isSameAs(caller);
                steps.add(step);
                events.add("step " + step);
            }, events);

            assertThat(listened).as(name).containsExactly(plain);
            assertThat(steps).as(name).containsExactlyElementsOf(IntStream.range(0, K).boxed().toList());
            // each step is reported after its model call and before the next one
            List<String> expected = new ArrayList<>();
            for (int s = 0; s < K; s++) {
                expected.add("predict " + s);
                expected.add("step " + s);
            }
            assertThat(events).as(name).containsExactlyElementsOf(expected);
            assertThat(ops.liveTensors()).as(name).isZero();
        }
    }

    @Test
    void aThrowingListenerStopsTheLoopAndLeaksNothing() {
        DdpmSampler sampler = new DdpmSampler(DiffusionSchedule.linear(1000).respace(K));
        List<String> events = new ArrayList<>();
        assertThatThrownBy(() -> generate(sampler, (step, total) -> {
            if (step == 2) {
                throw new IllegalStateException("cancelled at " + step);
            }
        }, events)).isInstanceOf(IllegalStateException.class).hasMessage("cancelled at 2");
        assertThat(events).containsExactly("predict 0", "predict 1", "predict 2");
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void nullListenerIsRejected() {
        DdimSampler sampler = new DdimSampler(DiffusionSchedule.linear(1000).respace(K));
        assertThatThrownBy(() -> sampler.sample(ops, DenoisingModel.uncached(model), shape, labels,
                new SeededGaussianNoise(1), (StepListener) null)).isInstanceOf(NullPointerException.class)
                .hasMessageContaining("listener");
        assertThat(ops.liveTensors()).isZero();
    }
}
