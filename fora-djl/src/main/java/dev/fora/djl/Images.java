package dev.fora.djl;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;

/**
 * Writes float images in DiT's value range [-1, 1] as PNG files: {@code round((x + 1) / 2 * 255)},
 * clamped to 0..255, the same mapping as the Python tooling.
 */
public final class Images {

    private Images() {
    }

    /**
     * Converts one image, {@code [C, H, W]} row-major with C = 1 (grey) or 3 (RGB), to an
     * RGB image, each pixel enlarged to a {@code scale x scale} square.
     */
    public static BufferedImage toImage(float[] chw, int channels, int height, int width, int scale) {
        if (channels != 1 && channels != 3) {
            throw new IllegalArgumentException("only 1 or 3 channels can be written as an image, got " + channels);
        }
        if (chw.length != channels * height * width) {
            throw new IllegalArgumentException("expected " + channels * height * width + " values for [" + channels + ", "
                    + height + ", " + width + "], got " + chw.length);
        }
        if (scale < 1) {
            throw new IllegalArgumentException("scale must be >= 1, got " + scale);
        }
        BufferedImage img = new BufferedImage(width * scale, height * scale, BufferedImage.TYPE_INT_RGB);
        int plane = height * width;
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int p = y * width + x;
                int r = toByte(chw[p]);
                int g = channels == 3 ? toByte(chw[plane + p]) : r;
                int b = channels == 3 ? toByte(chw[2 * plane + p]) : r;
                int rgb = (r << 16) | (g << 8) | b;
                for (int dy = 0; dy < scale; dy++) {
                    for (int dx = 0; dx < scale; dx++) {
                        img.setRGB(x * scale + dx, y * scale + dy, rgb);
                    }
                }
            }
        }
        return img;
    }

    /** Writes one {@code [C, H, W]} image as a PNG (parent directories are created). */
    public static void writePng(float[] chw, int channels, int height, int width, int scale, Path file) {
        write(toImage(chw, channels, height, width, scale), file);
    }

    /**
     * Writes {@code [N, C, H, W]} images as one PNG grid of {@code columns} columns with a
     * one-pixel white border.
     */
    public static void writeGrid(float[] nchw, long[] shape, int columns, int scale, Path file) {
        if (shape.length != 4) {
            throw new IllegalArgumentException("expected an [N, C, H, W] shape");
        }
        int n = (int) shape[0];
        int c = (int) shape[1];
        int h = (int) shape[2];
        int w = (int) shape[3];
        int cols = Math.max(1, Math.min(columns, n));
        int rows = (n + cols - 1) / cols;
        int cell = h * w * c;
        BufferedImage grid = new BufferedImage((cols * (w + 1) + 1) * scale, (rows * (h + 1) + 1) * scale,
                BufferedImage.TYPE_INT_RGB);
        java.awt.Graphics2D g = grid.createGraphics();
        try {
            g.setColor(java.awt.Color.WHITE);
            g.fillRect(0, 0, grid.getWidth(), grid.getHeight());
            for (int k = 0; k < n; k++) {
                float[] one = new float[cell];
                System.arraycopy(nchw, k * cell, one, 0, cell);
                int r = k / cols;
                int col = k % cols;
                g.drawImage(toImage(one, c, h, w, scale), (1 + col * (w + 1)) * scale, (1 + r * (h + 1)) * scale, null);
            }
        } finally {
            g.dispose();
        }
        write(grid, file);
    }

    private static void write(BufferedImage img, Path file) {
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            if (!ImageIO.write(img, "png", file.toFile())) {
                throw new IOException("no PNG writer available");
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    /**
     * A value in {@code [-1, 1]} as an 8-bit pixel: clamped, mapped to {@code [0, 255]} and
     * rounded half up, as torchvision's {@code save_image} (which DiT's {@code sample.py} uses)
     * does. The one pixel mapping of the project.
     */
    public static int toByte(float v) {
        double unit = (Math.min(1.0, Math.max(-1.0, v)) + 1.0) / 2.0;
        return (int) Math.floor(unit * 255.0 + 0.5);
    }
}
