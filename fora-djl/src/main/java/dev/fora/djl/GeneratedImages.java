package dev.fora.djl;

import ai.djl.modality.cv.Image;
import ai.djl.modality.cv.ImageFactory;
import dev.fora.core.engine.GenerationStats;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.Conditioning;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The result of {@link DiTPipeline#generate(GenerationRequest)}: the images as float
 * tensors in [-1, 1] (copied out of native memory, which is already released), the cache
 * statistics of the generation and how many TorchScript calls it made. For a model directory
 * with a latent decoder the images are the decoded pixels and {@link #latents()} holds what
 * the sampler produced; otherwise both are the same samples.
 */
public final class GeneratedImages {

    private final long[] shape;
    private final float[] data;
    private final Conditioning conditioning;
    private final GenerationStats stats;
    private final TorchScriptCalls calls;
    private final long nanos;
    private final long[] latentShape;
    private final float[] latents;
    private final long decodeNanos;

    GeneratedImages(long[] shape, float[] data, Conditioning conditioning, GenerationStats stats, TorchScriptCalls calls,
            long nanos) {
        this(shape, data, shape, data, 0, conditioning, stats, calls, nanos);
    }

    GeneratedImages(long[] shape, float[] data, long[] latentShape, float[] latents, long decodeNanos,
            Conditioning conditioning, GenerationStats stats, TorchScriptCalls calls, long nanos) {
        this.shape = shape.clone();
        this.data = data;
        this.latentShape = latentShape.clone();
        this.latents = latents;
        this.decodeNanos = decodeNanos;
        this.conditioning = conditioning;
        this.stats = stats;
        this.calls = calls;
        this.nanos = nanos;
    }

    /** Number of images {@code N}. */
    public int count() {
        return (int) shape[0];
    }

    /** {@code [N, C, H, W]}. */
    public long[] shape() {
        return shape.clone();
    }

    /** All images, {@code [N, C, H, W]} row-major (a copy). */
    public float[] data() {
        return data.clone();
    }

    /** Image {@code i}, {@code [C, H, W]} row-major (a copy). */
    public float[] image(int i) {
        int per = (int) (shape[1] * shape[2] * shape[3]);
        float[] out = new float[per];
        System.arraycopy(data, i * per, out, 0, per);
        return out;
    }

    /** Whether the images were decoded from latents by the model directory's decoder. */
    public boolean decoded() {
        return latents != data;
    }

    /** {@code [N, C, H, W]} of the sampler's output (the latents; the images' shape without a decoder). */
    public long[] latentShape() {
        return latentShape.clone();
    }

    /** The sampler's output, {@code [N, C, H, W]} row-major (a copy): the latents the images were decoded from. */
    public float[] latents() {
        return latents.clone();
    }

    /** Wall-clock time of the decoding, in nanoseconds (0 without a decoder); part of {@link #elapsedNanos()}. */
    public long decodeNanos() {
        return decodeNanos;
    }

    /** What each image was conditioned on. */
    public Conditioning conditioning() {
        return conditioning;
    }

    /** What the cache did: decisions per step, compute fraction, peak cache bytes. */
    public GenerationStats stats() {
        return stats;
    }

    /** TorchScript calls of the generation. */
    public TorchScriptCalls calls() {
        return calls;
    }

    /** Wall-clock time of the generation (sampling loop, decoding and read-back), in nanoseconds. */
    public long elapsedNanos() {
        return nanos;
    }

    /**
     * Writes each image as {@code <prefix><index>_<label>.png} (class labels) or
     * {@code <prefix><index>.png} in {@code dir}, each pixel enlarged to {@code scale x scale}.
     *
     * @return the files written
     */
    public List<Path> writePngs(Path dir, String prefix, int scale) {
        List<Path> files = new ArrayList<>(count());
        for (int i = 0; i < count(); i++) {
            String label = conditioning instanceof ClassLabels l ? "_" + l.label(i) : "";
            Path f = dir.resolve(prefix + i + label + ".png");
            Images.writePng(image(i), (int) shape[1], (int) shape[2], (int) shape[3], scale, f);
            files.add(f);
        }
        return files;
    }

    /**
     * Image {@code i} as a DJL {@link Image}, for DJL's vision tools (its RGB pixels from the
     * [-1, 1] values, a grey image for one channel; one pixel per value). It lives on the Java
     * heap: nothing to close.
     */
    public Image djlImage(int i) {
        if (i < 0 || i >= count()) {
            throw new IndexOutOfBoundsException("image " + i + " of " + count());
        }
        return ImageFactory.getInstance().fromImage(Images.toImage(image(i), (int) shape[1], (int) shape[2],
                (int) shape[3], 1));
    }

    /** Every image as a DJL {@link Image} ({@link #djlImage(int)}), in order. */
    public List<Image> djlImages() {
        List<Image> out = new ArrayList<>(count());
        for (int i = 0; i < count(); i++) {
            out.add(djlImage(i));
        }
        return out;
    }

    /** Writes all images as one PNG grid. */
    public void writeGrid(Path file, int columns, int scale) {
        Images.writeGrid(data, shape, columns, scale, file);
    }
}
