package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.model.ShippedModel;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The high-level example of the README, as written there, and the PNGs it writes. */
class ReadmeExampleTest {

    @TempDir
    Path out;

    @Test
    void generatesAndWritesPngs() throws Exception {
        GeneratedImages images;
        try (DiTPipeline pipeline = DiTPipeline.load(ShippedModel.extract())) {
            images = pipeline.generate(GenerationRequest.builder(0, 3, 5, 8) // class labels
                    .sampler("ddim")          // ddim | ddpm | dpm-solver++
                    .steps(50)
                    .cfgScale(1.5)            // classifier-free guidance; 1 = off
                    .policy("fora:3")         // none | fora:N | taylorseer:N,O | hicache:N | fbcache:T | ...
                    .seed(42)
                    .build());
            List<Path> files = images.writePngs(out, "sample_", 8);
            System.out.println(images.stats());
            System.out.println(images.calls());
            assertThat(files).hasSize(4);
            assertThat(files.get(1).getFileName().toString()).isEqualTo("sample_1_3.png");
            BufferedImage png = ImageIO.read(files.get(0).toFile());
            assertThat(png.getWidth()).isEqualTo(16 * 8);
            assertThat(png.getHeight()).isEqualTo(16 * 8);
            float[] first = images.image(0);
            int expectedRed = (int) Math.rint((Math.max(-1, Math.min(1, first[0])) + 1) / 2 * 255);
            assertThat((png.getRGB(0, 0) >> 16) & 0xff).isEqualTo(expectedRed);
            images.writeGrid(out.resolve("grid.png"), 4, 2);
            assertThat(ImageIO.read(out.resolve("grid.png").toFile()).getWidth()).isEqualTo((4 * 17 + 1) * 2);
        }
        assertThat(images.stats().fullSteps()).isEqualTo(18);
        assertThat(images.elapsedNanos()).isPositive();
    }
}
