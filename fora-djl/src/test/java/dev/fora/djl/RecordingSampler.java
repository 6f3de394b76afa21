package dev.fora.djl;

import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.NoiseSource;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/** Wraps a sampler and copies the latent after the steps at the given loop indices. */
final class RecordingSampler extends DiffusionSampler {

    private final DiffusionSampler inner;
    private final Set<Integer> keep;
    private final Map<Integer, float[]> kept = new TreeMap<>();

    RecordingSampler(DiffusionSampler inner, Set<Integer> keep) {
        super(inner.schedule(), inner.clipDenoised());
        this.inner = inner;
        this.keep = keep;
    }

    /** Latent after the step at loop index i, for the kept indices. */
    Map<Integer, float[]> kept() {
        return kept;
    }

    @Override
    public <T extends Tensor> Stepper<T> newStepper(TensorOps<T> ops, NoiseSource noise) {
        Stepper<T> s = inner.newStepper(ops, noise);
        return new Stepper<>() {
            @Override
            public T step(SamplingStep step, T x, T modelOutput) {
                T next = s.step(step, x, modelOutput);
                if (keep.contains(step.loopIndex())) {
                    kept.put(step.loopIndex(), ops.toFloats(next));
                }
                return next;
            }

            @Override
            public void close() {
                s.close();
            }
        };
    }
}
