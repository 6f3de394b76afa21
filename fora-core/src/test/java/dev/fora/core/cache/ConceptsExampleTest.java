package dev.fora.core.cache;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.engine.Generation;
import dev.fora.core.engine.GenerationStats;
import dev.fora.core.engine.Run;
import dev.fora.core.engine.StepScheduler;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.DiTModel;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.DdimSampler;
import dev.fora.core.sampling.DenoisingModel;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.PerImageNoise;
import dev.fora.core.sampling.SeededGaussianNoise;
import java.util.List;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.testing.SyntheticDiT;
import org.junit.jupiter.api.Test;

/**
 * The core's examples in docs/concepts.md ("The engine", "Sampling"), as written there, on the synthetic DiT.
 * {@code DocsExamplesTest} (fora-examples) checks that the snippet still appears here line by line.
 */
class ConceptsExampleTest {

    @Test
    void aCachedGuidedDdimRunOnPlainArrays() {
        ArrayOps ops = new ArrayOps();
        DiTConfig c = SyntheticDiT.SMALL;
        SyntheticDiT model = new SyntheticDiT(ops, c, 1);
        GenerationStats stats = example(ops, model, new long[] {4, c.inChannels(), c.inputSize(), c.inputSize()}, 7);
        assertThat(stats.fullSteps()).isEqualTo(18);
        assertThat(stats.computeFraction()).isEqualTo(0.36);
        assertThat(ops.liveTensors()).isZero();
    }

    private static <T extends Tensor> GenerationStats example(TensorOps<T> ops, DiTModel<T> model, long[] shape, long seed) {
        DiffusionSchedule schedule = DiffusionSchedule.linear(1000).respace(50);
        try (Generation<T> g = Generation.builder(model, CachePolicies.parse("fora:3")).steps(50).images(4).guided(true).open()) {
            DenoisingModel<T> guided = new ClassifierFreeGuidance<>(ops, g, 1.5, model.unconditional());
            T latent = new DdimSampler(schedule).sample(ops, guided, shape, ClassLabels.of(0, 3, 5, 8),
                    PerImageNoise.seeded(seed, 4));
            System.out.println(g.stats());
            assertThat(latent.shape()).containsExactly(shape);
            latent.close();
            return g.stats();
        }
    }
    @Test
    void oneRunUnderTheSchedulerOnPlainArrays() {
        ArrayOps ops = new ArrayOps();
        SyntheticDiT model = new SyntheticDiT(ops, SyntheticDiT.SMALL, 1);
        float[] sample = run(ops, model, DiffusionSchedule.linear(1000).respace(50));
        assertThat(sample).hasSize(SyntheticDiT.SMALL.inChannels() * SyntheticDiT.SMALL.inputSize()
                * SyntheticDiT.SMALL.inputSize());
        assertThat(ops.liveTensors()).isZero();
    }

    private static <T extends Tensor> float[] run(TensorOps<T> ops, DiTModel<T> model, DiffusionSchedule schedule) {
        try (StepScheduler<T> scheduler = new StepScheduler<>(model)) {
            Run<T> run = scheduler.newRun(CachePolicies.parse("fora:3"), new DdimSampler(schedule))
                    .conditioning(ClassLabels.of(3)).noise(new SeededGaussianNoise(7)).guidance(1.5, 0).open();
            while (run.state() == Run.State.RUNNING) {
                scheduler.pass(List.of(run));                 // more runs, at any step, may share the pass
            }
            T sample = run.latent();
            assertThat(run.stats().computeFraction()).isEqualTo(0.36);
            return ops.toFloats(sample);
        }
    }
}
