package dev.fora.examples.image;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.djl.Images;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageGridTest {

    @TempDir
    Path tmp;

    @Test
    void layoutUpscalesByNearestNeighbourWithSeparators() throws Exception {
        // two rows of three 2x2 RGB images
        ImageBatch row = solid(3, 3, 2, 2, 1f, -1f, -1f); // red
        ImageGrid grid = new ImageGrid(4, 1);
        BufferedImage img = grid.render(List.of(row, row), null);
        assertThat(img.getWidth()).isEqualTo(3 * 8 + 4 * 1);
        assertThat(img.getHeight()).isEqualTo(2 * 8 + 3 * 1);
        // inside the first cell: red; on the separator: not red
        assertThat(img.getRGB(1, 1) & 0xFFFFFF).isEqualTo(0xFF0000);
        assertThat(img.getRGB(8, 8) & 0xFFFFFF).isEqualTo(0xFF0000);
        assertThat(img.getRGB(0, 0) & 0xFFFFFF).isNotEqualTo(0xFF0000);

        Path file = tmp.resolve("grid.png");
        grid.write(List.of(row, row), null, file);
        BufferedImage back = ImageIO.read(file.toFile());
        assertThat(back.getWidth()).isEqualTo(img.getWidth());
        assertThat(back.getHeight()).isEqualTo(img.getHeight());
    }

    @Test
    void nearestNeighbourKeepsEachPixelABlock() {
        // a 2x1 grey image: left black, right white, scaled by 3
        ImageBatch b = new ImageBatch(new float[] {-1f, 1f}, 1, 1, 1, 2);
        BufferedImage img = new ImageGrid(3, 0).render(List.of(b), null);
        assertThat(img.getWidth()).isEqualTo(6);
        assertThat(img.getHeight()).isEqualTo(3);
        for (int y = 0; y < 3; y++) {
            for (int x = 0; x < 3; x++) {
                assertThat(img.getRGB(x, y) & 0xFFFFFF).isEqualTo(0x000000);
                assertThat(img.getRGB(x + 3, y) & 0xFFFFFF).isEqualTo(0xFFFFFF);
            }
        }
    }

    @Test
    void labelsAddALeftColumn() {
        ImageBatch row = solid(2, 3, 4, 4, 0f, 0f, 0f);
        ImageGrid grid = new ImageGrid(2, 1);
        int labelWidth = grid.labelWidth(List.of("none", "fora:3"));
        assertThat(labelWidth).isPositive();
        BufferedImage img = grid.render(List.of(row, row), List.of("none", "fora:3"));
        assertThat(img.getWidth()).isEqualTo(labelWidth + 2 * 8 + 3);
        assertThat(img.getHeight()).isEqualTo(2 * 8 + 3);
    }

    @Test
    void mapsTheValueRangeToBytes() {
        assertThat(Images.toByte(-1f)).isZero();
        assertThat(Images.toByte(1f)).isEqualTo(255);
        assertThat(Images.toByte(0f)).isEqualTo(128);
        assertThat(Images.toByte(5f)).isEqualTo(255);
        assertThat(Images.toByte(-5f)).isZero();
    }

    @Test
    void defaultScaleReachesSixtyFourPixels() {
        assertThat(ImageGrid.forImageSize(16).scale()).isEqualTo(4);
        assertThat(ImageGrid.forImageSize(256).scale()).isEqualTo(1);
    }

    private static ImageBatch solid(int n, int c, int h, int w, float... channel) {
        float[] v = new float[n * c * h * w];
        for (int i = 0; i < n; i++) {
            for (int ch = 0; ch < c; ch++) {
                for (int p = 0; p < h * w; p++) {
                    v[((i * c) + ch) * h * w + p] = channel[ch];
                }
            }
        }
        return new ImageBatch(v, n, c, h, w);
    }
}
