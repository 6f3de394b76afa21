package dev.fora.examples.image;

import dev.fora.djl.Images;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;

/**
 * Composes image batches into one PNG: one row per batch (e.g. per cache policy), one column
 * per image, each image upscaled by nearest neighbour (the shipped model makes 16x16 images),
 * cells separated by thin lines, and an optional text label left of each row.
 *
 * <p>Layout without labels: width {@code cols*cell + (cols+1)*sep}, height
 * {@code rows*cell + (rows+1)*sep} where {@code cell = size*scale}. Labels add a column of
 * {@link #labelWidth(List)} pixels on the left.
 *
 * <p>Pixels map {@code [-1, 1]} to {@code 0..255} ({@code round((v+1)/2*255)}, clipped). One
 * channel is drawn grey, three as RGB; more channels (a latent) show the first three.
 */
public final class ImageGrid {

    /** Separator colour. */
    private static final Color SEPARATOR = new Color(0xE0, 0xE0, 0xE0);
    private static final Color LABEL = new Color(0x20, 0x20, 0x20);
    private static final int LABEL_PAD = 6;

    private final int scale;
    private final int separator;

    /**
     * @param scale nearest-neighbour upscaling factor, {@code >= 1}
     * @param separator separator width in pixels, {@code >= 0}
     */
    public ImageGrid(int scale, int separator) {
        if (scale < 1 || separator < 0) {
            throw new IllegalArgumentException("scale must be >= 1 and separator >= 0, got " + scale + ", " + separator);
        }
        this.scale = scale;
        this.separator = separator;
    }

    /** The default grid for images of side {@code size}: upscaled to at least 64 px, 2 px separators. */
    public static ImageGrid forImageSize(int size) {
        return new ImageGrid(Math.max(1, (int) Math.ceil(64.0 / size)), 2);
    }

    /** Upscaling factor. */
    public int scale() {
        return scale;
    }

    /** Separator width. */
    public int separator() {
        return separator;
    }

    /**
     * Draws the grid.
     *
     * @param rows one batch per row (all of one image shape; rows may differ in length)
     * @param labels one label per row, or {@code null} for none
     */
    public BufferedImage render(List<ImageBatch> rows, List<String> labels) {
        if (rows.isEmpty()) {
            throw new IllegalArgumentException("nothing to draw");
        }
        if (labels != null && labels.size() != rows.size()) {
            throw new IllegalArgumentException(labels.size() + " labels for " + rows.size() + " rows");
        }
        ImageBatch first = rows.get(0);
        int h = first.height();
        int w = first.width();
        int cols = 0;
        for (ImageBatch r : rows) {
            if (r.height() != h || r.width() != w) {
                throw new IllegalArgumentException("rows differ in image size: " + first.shapeString() + " vs " + r.shapeString());
            }
            cols = Math.max(cols, r.count());
        }
        int cellW = w * scale;
        int cellH = h * scale;
        int labelW = labels == null ? 0 : labelWidth(labels);
        int width = labelW + cols * cellW + (cols + 1) * separator;
        int height = rows.size() * cellH + (rows.size() + 1) * separator;
        BufferedImage out = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        try {
            g.setColor(SEPARATOR);
            g.fillRect(0, 0, width, height);
            if (labelW > 0) {
                g.setColor(Color.WHITE);
                g.fillRect(0, 0, labelW, height);
            }
        } finally {
            g.dispose();
        }
        for (int r = 0; r < rows.size(); r++) {
            ImageBatch batch = rows.get(r);
            int y0 = separator + r * (cellH + separator);
            for (int c = 0; c < batch.count(); c++) {
                int x0 = labelW + separator + c * (cellW + separator);
                drawImage(out, batch, c, x0, y0);
            }
        }
        if (labelW > 0) {
            drawLabels(out, labels, cellH);
        }
        return out;
    }

    /** Writes the grid as PNG, creating no directories. */
    public void write(List<ImageBatch> rows, List<String> labels, Path file) throws IOException {
        writePng(render(rows, labels), file);
    }

    /** Writes an image as PNG. */
    public static void writePng(BufferedImage image, Path file) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try {
            if (!ImageIO.write(image, "png", tmp.toFile())) {
                throw new IOException("no PNG writer available");
            }
            Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** One image of a batch as an RGB image at its native size. */
    public static BufferedImage toImage(ImageBatch batch, int index) {
        return new ImageGrid(1, 0).render(List.of(new ImageBatch(batch.image(index), 1, batch.channels(),
                batch.height(), batch.width())), null);
    }

    /** Width of the label column for these labels (0 if all are empty). */
    public int labelWidth(List<String> labels) {
        int chars = 0;
        for (String s : labels) {
            chars = Math.max(chars, s == null ? 0 : s.length());
        }
        if (chars == 0) {
            return 0;
        }
        return chars * charWidth() + 2 * LABEL_PAD;
    }

    private Font font() {
        return new Font(Font.MONOSPACED, Font.PLAIN, 12);
    }

    /** Advance of one monospaced character; a fixed estimate if the platform has no fonts. */
    private int charWidth() {
        try {
            BufferedImage probe = new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB);
            Graphics2D g = probe.createGraphics();
            try {
                return g.getFontMetrics(font()).charWidth('m');
            } finally {
                g.dispose();
            }
        } catch (RuntimeException | Error e) {
            return 7;
        }
    }

    private void drawLabels(BufferedImage out, List<String> labels, int cellH) {
        try {
            Graphics2D g = out.createGraphics();
            try {
                g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
                g.setFont(font());
                g.setColor(LABEL);
                FontMetrics fm = g.getFontMetrics();
                for (int r = 0; r < labels.size(); r++) {
                    String s = labels.get(r) == null ? "" : labels.get(r);
                    int y0 = separator + r * (cellH + separator);
                    int baseline = y0 + (cellH + fm.getAscent() - fm.getDescent()) / 2;
                    g.drawString(s, LABEL_PAD, baseline);
                }
            } finally {
                g.dispose();
            }
        } catch (RuntimeException | Error e) {
            // Headless JRE without fonts: the grid is still useful without row labels.
        }
    }

    private void drawImage(BufferedImage out, ImageBatch batch, int index, int x0, int y0) {
        int h = batch.height();
        int w = batch.width();
        int plane = h * w;
        int base = index * batch.imageSize();
        float[] v = batch.values();
        boolean grey = batch.channels() < 3;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int p = base + y * w + x;
                int r = Images.toByte(v[p]);
                int gr = grey ? r : Images.toByte(v[p + plane]);
                int b = grey ? r : Images.toByte(v[p + 2 * plane]);
                int rgb = (r << 16) | (gr << 8) | b;
                for (int dy = 0; dy < scale; dy++) {
                    for (int dx = 0; dx < scale; dx++) {
                        out.setRGB(x0 + x * scale + dx, y0 + y * scale + dy, rgb);
                    }
                }
            }
        }
    }
}
