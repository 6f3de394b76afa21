package dev.fora.core.sampling;

import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Classifier-free guidance on one batched pass, as DiT's {@code forward_with_cfg}: the
 * model sees {@code concat(x, x)} with labels {@code concat(y, null * N)} and the result is
 * <pre>
 *   eps = eps_u + s * (eps_c - eps_u)     on the guided channels
 * </pre>
 * with every other channel (unguided eps channels, the variance value v) taken from the
 * conditional half. By default all eps channels are guided; DiT guides only the first 3 of
 * its 4 latent channels, which {@code guidedChannels = 3} reproduces. With scale 1 the inner
 * model runs on the plain batch of N, without the unconditional half.
 *
 * <p>Wrapping a {@link dev.fora.core.cache.GenerationSession} makes cond and uncond share one
 * cache schedule, as in FORA.
 *
 * @param <T> tensor type
 */
public final class ClassifierFreeGuidance<T extends Tensor> implements DenoisingModel<T> {

    private final TensorOps<T> ops;
    private final DenoisingModel<T> inner;
    private final double scale;
    private final int nullLabel;
    private final int guidedChannels;

    /** Guidance on all eps channels. */
    public ClassifierFreeGuidance(TensorOps<T> ops, DenoisingModel<T> inner, double scale, int nullLabel) {
        this(ops, inner, scale, nullLabel, 0);
    }

    /**
     * @param ops the engine
     * @param inner the model to guide
     * @param scale guidance scale {@code s} (1 disables guidance)
     * @param nullLabel the unconditional label ({@code DiTConfig.nullLabel()})
     * @param guidedChannels how many leading eps channels to guide; 0 means all
     */
    public ClassifierFreeGuidance(TensorOps<T> ops, DenoisingModel<T> inner, double scale, int nullLabel,
            int guidedChannels) {
        if (!Double.isFinite(scale)) {
            throw new IllegalArgumentException("guidance scale must be finite, got " + scale);
        }
        if (guidedChannels < 0) {
            throw new IllegalArgumentException("guidedChannels must be >= 0 (0 = all), got " + guidedChannels);
        }
        this.ops = Objects.requireNonNull(ops, "ops");
        this.inner = Objects.requireNonNull(inner, "inner");
        this.scale = scale;
        this.nullLabel = nullLabel;
        this.guidedChannels = guidedChannels;
    }

    /** The guidance scale. */
    public double scale() {
        return scale;
    }

    @Override
    public T predict(SamplingStep step, T x, int[] labels) {
        if (scale == 1.0) {
            return inner.predict(step, x, labels);
        }
        int n = labels.length;
        int c = (int) x.shape()[1];
        int guided = guidedChannels == 0 ? c : guidedChannels;
        if (guided > c) {
            throw new IllegalArgumentException("cannot guide " + guided + " channels of a " + c + "-channel latent");
        }
        int[] both = new int[2 * n];
        System.arraycopy(labels, 0, both, 0, n);
        Arrays.fill(both, n, 2 * n, nullLabel);
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
            T out = inner.predict(step, ops.concatBatch(List.of(x, x)), both);
            T cond = ops.sliceBatch(out, 0, n);
            T uncond = ops.sliceBatch(out, n, 2L * n);
            T epsC = ops.sliceChannels(cond, 0, guided);
            T epsU = ops.sliceChannels(uncond, 0, guided);
            T mixed = ops.add(epsU, ops.scale(ops.sub(epsC, epsU), scale));
            long outChannels = out.shape()[1];
            T result = guided == outChannels ? mixed
                    : ops.concatChannels(List.of(mixed, ops.sliceChannels(cond, guided, outChannels)));
            return ops.attach(result, outer);
        }
    }
}
