package dev.fora.examples.metrics;

import dev.fora.examples.image.ImageBatch;

/**
 * Full-reference image quality: PSNR and SSIM of generated images against the uncached
 * images of the same seeds.
 *
 * <p>Images are in the model's value range {@code [-1, 1]}; both metrics first map them to
 * {@code [0, 1]} ({@code (v + 1) / 2}, clipped), so the peak signal is {@code 1}. Batch
 * figures are computed per image and then averaged over the images.
 */
public final class ImageMetrics {

    /** SSIM constants of Wang et al. (2004) for a dynamic range {@code L = 1}. */
    private static final double C1 = 0.01 * 0.01;
    private static final double C2 = 0.03 * 0.03;
    /** Standard deviation of the Gaussian SSIM window. */
    private static final double SSIM_SIGMA = 1.5;
    /** Width of the Gaussian SSIM window (shrunk for images smaller than this). */
    private static final int SSIM_WINDOW = 11;

    private ImageMetrics() {
    }

    /**
     * PSNR in dB of one image against a reference, both of {@code [-1, 1]} values in the same
     * layout: {@code 10 log10(1 / MSE)} on {@code [0, 1]} values.
     *
     * @return {@code +Infinity} for identical images
     */
    public static double psnr(float[] image, float[] reference) {
        checkSameLength(image, reference);
        double sum = 0;
        for (int i = 0; i < image.length; i++) {
            double d = unit(image[i]) - unit(reference[i]);
            sum += d * d;
        }
        double mse = sum / image.length;
        return mse == 0 ? Double.POSITIVE_INFINITY : 10 * Math.log10(1.0 / mse);
    }

    /** Mean over images of {@link #psnr(float[], float[])} ({@code +Infinity} if any pair is identical). */
    public static double meanPsnr(ImageBatch images, ImageBatch reference) {
        checkSameShape(images, reference);
        double sum = 0;
        for (int n = 0; n < images.count(); n++) {
            sum += psnr(images.image(n), reference.image(n));
        }
        return sum / images.count();
    }

    /**
     * SSIM of one {@code C x H x W} image against a reference: the Gaussian-window SSIM of
     * Wang et al. ({@code sigma = 1.5}, window 11, or the largest odd size that fits a smaller
     * image; {@code K1 = 0.01}, {@code K2 = 0.03}, {@code L = 1}), averaged over the positions
     * where the window fits entirely ("valid") and then over channels.
     *
     * @return 1 for identical images
     */
    public static double ssim(float[] image, float[] reference, int channels, int height, int width) {
        checkSameLength(image, reference);
        if (image.length != channels * height * width) {
            throw new IllegalArgumentException("image has " + image.length + " values, expected " + channels + "x"
                    + height + "x" + width);
        }
        int win = Math.min(SSIM_WINDOW, Math.min(height, width));
        if (win % 2 == 0) {
            win--;
        }
        double[] w = gaussianWindow(win, SSIM_SIGMA);
        int outH = height - win + 1;
        int outW = width - win + 1;
        double total = 0;
        int plane = height * width;
        for (int c = 0; c < channels; c++) {
            int off = c * plane;
            double sumMap = 0;
            for (int y = 0; y < outH; y++) {
                for (int x = 0; x < outW; x++) {
                    double mx = 0;
                    double my = 0;
                    double xx = 0;
                    double yy = 0;
                    double xy = 0;
                    for (int dy = 0; dy < win; dy++) {
                        for (int dx = 0; dx < win; dx++) {
                            double weight = w[dy] * w[dx];
                            int idx = off + (y + dy) * width + (x + dx);
                            double a = unit(image[idx]);
                            double b = unit(reference[idx]);
                            mx += weight * a;
                            my += weight * b;
                            xx += weight * a * a;
                            yy += weight * b * b;
                            xy += weight * a * b;
                        }
                    }
                    double vx = xx - mx * mx;
                    double vy = yy - my * my;
                    double cov = xy - mx * my;
                    sumMap += ((2 * mx * my + C1) * (2 * cov + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2));
                }
            }
            total += sumMap / (outH * outW);
        }
        return total / channels;
    }

    /** Mean over images of {@link #ssim(float[], float[], int, int, int)}. */
    public static double meanSsim(ImageBatch images, ImageBatch reference) {
        checkSameShape(images, reference);
        double sum = 0;
        for (int n = 0; n < images.count(); n++) {
            sum += ssim(images.image(n), reference.image(n), images.channels(), images.height(), images.width());
        }
        return sum / images.count();
    }

    /** Normalised 1-D Gaussian of odd width {@code size}. */
    static double[] gaussianWindow(int size, double sigma) {
        double[] w = new double[size];
        int half = size / 2;
        double sum = 0;
        for (int i = 0; i < size; i++) {
            double d = i - half;
            w[i] = Math.exp(-d * d / (2 * sigma * sigma));
            sum += w[i];
        }
        for (int i = 0; i < size; i++) {
            w[i] /= sum;
        }
        return w;
    }

    /** {@code [-1, 1]} to {@code [0, 1]}, clipped. */
    static double unit(float v) {
        double u = (v + 1.0) / 2.0;
        return u < 0 ? 0 : (u > 1 ? 1 : u);
    }

    private static void checkSameLength(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("images differ in size: " + a.length + " vs " + b.length + " values");
        }
    }

    private static void checkSameShape(ImageBatch a, ImageBatch b) {
        if (a.count() != b.count() || a.channels() != b.channels() || a.height() != b.height() || a.width() != b.width()) {
            throw new IllegalArgumentException("image batches differ in shape: " + a.shapeString() + " vs " + b.shapeString());
        }
    }
}
