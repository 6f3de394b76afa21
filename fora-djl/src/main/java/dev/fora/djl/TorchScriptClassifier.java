package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * The quality judge shipped beside a model ({@code classifier.pt}): class logits of images in
 * [-1, 1] and the penultimate features used for a Frechet distance. Thread-safe; every call
 * releases its native arrays before returning. Closing the pipeline waits for calls in flight;
 * calls after it fail with an {@link IllegalStateException}.
 */
public final class TorchScriptClassifier {

    private final TorchScriptModule module;
    private final NDManager parent;
    private final List<String> classes;
    private final CloseGuard uses;

    private TorchScriptClassifier(TorchScriptModule module, NDManager parent, List<String> classes, CloseGuard uses) {
        this.module = module;
        this.parent = parent;
        this.classes = classes;
        this.uses = uses;
    }

    /** @param uses the pipeline's guard: every call is a use of the pipeline */
    static TorchScriptClassifier load(NDManager parent, Path file, List<String> classes, boolean graphOptimizer,
            CloseGuard uses) throws ModelLoadException {
        TorchScriptModule m = TorchScriptModule.load(parent, file, List.of("forward", "features"), graphOptimizer);
        return new TorchScriptClassifier(m, parent, classes, uses);
    }

    /** Class names, index = label (empty if the manifest has none). */
    public List<String> classes() {
        return classes;
    }

    /**
     * Logits of {@code [N, 3, H, W]} images (row-major, values in [-1, 1]).
     *
     * @return {@code [N][classes]}
     */
    public float[][] logits(float[] images, long[] shape) {
        return rows(run("forward", images, shape));
    }

    /** Penultimate features, {@code [N][features]}. */
    public float[][] features(float[] images, long[] shape) {
        return rows(run("features", images, shape));
    }

    /** The most likely class of each image. */
    public int[] predict(float[] images, long[] shape) {
        float[][] logits = logits(images, shape);
        int[] out = new int[logits.length];
        for (int i = 0; i < logits.length; i++) {
            int best = 0;
            for (int k = 1; k < logits[i].length; k++) {
                if (logits[i][k] > logits[i][best]) {
                    best = k;
                }
            }
            out[i] = best;
        }
        return out;
    }

    /** Logits of generated images. */
    public float[][] logits(GeneratedImages images) {
        return logits(images.data(), images.shape());
    }

    /** Features of generated images. */
    public float[][] features(GeneratedImages images) {
        return features(images.data(), images.shape());
    }

    /** The most likely class of each generated image. */
    public int[] predict(GeneratedImages images) {
        return predict(images.data(), images.shape());
    }

    /** Logits of images already in native memory (result in {@code images}' manager). */
    public NDArray logits(NDArray images) {
        return call("forward", images);
    }

    /** Features of images already in native memory (result in {@code images}' manager). */
    public NDArray features(NDArray images) {
        return call("features", images);
    }

    private NDArray call(String method, NDArray images) {
        uses.enter();
        try {
            return module.call(method, images.getManager(), images)[0];
        } finally {
            uses.exit();
        }
    }

    private record Result(long rows, long cols, float[] data) {
    }

    private Result run(String method, float[] images, long[] shape) {
        if (shape.length != 4 || shape[1] != 3) {
            throw new IllegalArgumentException("the classifier takes [N, 3, H, W] images, got " + Arrays.toString(shape));
        }
        if (shape[0] * shape[1] * shape[2] * shape[3] != images.length) {
            throw new IllegalArgumentException(images.length + " values do not fill shape " + Arrays.toString(shape));
        }
        uses.enter();
        try (NDManager m = parent.newSubManager()) {
            NDArray x = m.create(images, new Shape(shape));
            NDArray out = module.call(method, m, x)[0];
            long[] s = out.getShape().getShape();
            return new Result(s[0], s[1], out.toFloatArray());
        } finally {
            uses.exit();
        }
    }

    private static float[][] rows(Result r) {
        float[][] out = new float[(int) r.rows()][(int) r.cols()];
        for (int i = 0; i < out.length; i++) {
            System.arraycopy(r.data(), i * (int) r.cols(), out[i], 0, (int) r.cols());
        }
        return out;
    }
}
