package dev.fora.core.sampling;

import dev.fora.core.model.Conditioning;
import dev.fora.core.tensor.Tensor;
import dev.fora.core.tensor.TensorOps;
import dev.fora.core.tensor.TensorScope;
import java.util.List;
import java.util.Objects;
import java.util.function.UnaryOperator;

/**
 * Classifier-free guidance on one batched pass, as DiT's {@code forward_with_cfg}: the
 * model sees {@code concat(x, x)} with conditioning {@code concat(c, null * N)} (the null
 * class, or the empty caption's embedding) and the result is
 * <pre>
 *   eps = eps_u + s * (eps_c - eps_u)     on the guided channels
 * </pre>
 * with every other channel (unguided eps channels, the variance value v) taken from the
 * conditional half. By default all eps channels are guided; DiT guides only the first 3 of
 * its 4 latent channels, which {@code guidedChannels = 3} reproduces. With scale 1 the inner
 * model runs on the plain batch of N, without the unconditional half.
 *
 * <p>Wrapping a {@link dev.fora.core.engine.Generation} opened with {@code guided(true)} lets
 * it decide each image's two halves together, as FORA does.
 *
 * @param <T> tensor type
 */
public final class ClassifierFreeGuidance<T extends Tensor> implements DenoisingModel<T> {

    private final TensorOps<T> ops;
    private final DenoisingModel<T> inner;
    private final double scale;
    private final UnaryOperator<Conditioning> unconditionalRows;
    private final int guidedChannels;

    /** Guidance on all eps channels. */
    public ClassifierFreeGuidance(TensorOps<T> ops, DenoisingModel<T> inner, double scale, Conditioning unconditional) {
        this(ops, inner, scale, unconditional, 0);
    }

    /**
     * @param ops the engine
     * @param inner the model to guide
     * @param scale guidance scale {@code s} (1 disables guidance); must be finite and {@code >= 0}
     *     ({@code 0} is the unconditional model; a negative scale pushes towards the opposite of
     *     the condition, which no sampler here is meant for)
     * @param unconditional one row of the unconditional value ({@code DiTModel.unconditional()})
     * @param guidedChannels how many leading eps channels to guide; 0 means all
     */
    public ClassifierFreeGuidance(TensorOps<T> ops, DenoisingModel<T> inner, double scale, Conditioning unconditional,
            int guidedChannels) {
        this(ops, inner, scale, rowsOf(unconditional), guidedChannels);
    }

    /**
     * Guidance whose unconditional half is {@code unconditionalRows.apply(conditioning)}, one row
     * per conditional row (e.g. {@code model::unconditionalFor}: an empty caption under each
     * prompt's token mask).
     *
     * @param guidedChannels how many leading eps channels to guide; 0 means all
     */
    public ClassifierFreeGuidance(TensorOps<T> ops, DenoisingModel<T> inner, double scale,
            UnaryOperator<Conditioning> unconditionalRows, int guidedChannels) {
        if (!Double.isFinite(scale) || scale < 0) {
            throw new IllegalArgumentException("guidance scale must be finite and >= 0, got " + scale);
        }
        if (guidedChannels < 0) {
            throw new IllegalArgumentException("guidedChannels must be >= 0 (0 = all), got " + guidedChannels);
        }
        this.ops = Objects.requireNonNull(ops, "ops");
        this.inner = Objects.requireNonNull(inner, "inner");
        this.scale = scale;
        this.unconditionalRows = Objects.requireNonNull(unconditionalRows, "unconditionalRows");
        this.guidedChannels = guidedChannels;
    }

    private static UnaryOperator<Conditioning> rowsOf(Conditioning unconditional) {
        if (Objects.requireNonNull(unconditional, "unconditional").size() != 1) {
            throw new IllegalArgumentException("the unconditional value must be one row, got " + unconditional.size());
        }
        return conditioning -> unconditional.repeat(0, conditioning.size());
    }

    /** The guidance scale. */
    public double scale() {
        return scale;
    }

    @Override
    public T predict(SamplingStep step, T x, Conditioning conditioning) {
        if (scale == 1.0) {
            return inner.predict(step, x, conditioning);
        }
        int n = conditioning.size();
        int c = (int) x.shape()[1];
        int guided = guidedChannels == 0 ? c : guidedChannels;
        if (guided > c) {
            throw new IllegalArgumentException("cannot guide " + guided + " channels of a " + c + "-channel latent");
        }
        Conditioning unconditional = unconditionalRows.apply(conditioning);
        if (unconditional == null || unconditional.size() != n) {
            throw new IllegalArgumentException("the unconditional rows for " + n + " conditional rows are "
                    + (unconditional == null ? "missing" : unconditional.size() + " rows"));
        }
        Conditioning both = conditioning.concat(unconditional);
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
            T out = inner.predict(step, ops.concatBatch(List.of(x, x)), both);
            T mixed = mix(ops, ops.sliceBatch(out, 0, n), ops.sliceBatch(out, n, 2L * n), guided, scale);
            return ops.attach(mixed, outer);
        }
    }

    /**
     * The guided output of the conditional rows {@code cond} and the unconditional rows
     * {@code uncond} of a model output: {@code eps_u + scale * (eps_c - eps_u)} on the first
     * {@code guidedChannels} channels, the conditional rows' values on the rest. In the current
     * scope; the inputs are not released.
     */
    public static <T extends Tensor> T mix(TensorOps<T> ops, T cond, T uncond, int guidedChannels, double scale) {
        TensorScope outer = ops.currentScope();
        try (TensorScope scope = ops.openScope()) {
            T epsC = ops.sliceChannels(cond, 0, guidedChannels);
            T epsU = ops.sliceChannels(uncond, 0, guidedChannels);
            T mixed = ops.add(epsU, ops.scale(ops.sub(epsC, epsU), scale));
            long outChannels = cond.shape()[1];
            T result = guidedChannels == outChannels ? mixed
                    : ops.concatChannels(List.of(mixed, ops.sliceChannels(cond, guidedChannels, outChannels)));
            return ops.attach(result, outer);
        }
    }
}
