package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.model.ShippedModel;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The high-level example of README.md and docs/library.md ("Generate images"), as written there,
 * and the PNGs it writes. {@code DocsExamplesTest} (fora-examples) checks that the snippet still
 * appears here line by line.
 */
class ReadmeExampleTest {

    @TempDir
    Path outDir;

    @Test
    void generatesAndWritesPngs() throws Exception {
        Path modelDir = ShippedModel.extract();               // or Path.of("your/exported/model")
        try (DiTPipeline pipeline = DiTPipeline.load(modelDir)) {
            GeneratedImages images = pipeline.generate(GenerationRequest.builder(0, 3, 5, 8) // class labels
                    .sampler("ddim")          // ddim | ddpm | dpm-solver++ | dpms
                    .steps(50)
                    .cfgScale(1.5)            // classifier-free guidance; 1 = off
                    .policy("fora:3")         // a policy spec: none | fora:N | taylorseer:N,O | ... (policies.md)
                    .seed(42)                 // image k draws its noise from seed 42 + k
                    .build());
            images.writePngs(outDir, "sample_", 8);          // outDir/sample_0_0.png ... (8x enlarged)
            float[] first = images.image(0);                 // [C,H,W] floats in [-1, 1]
            System.out.println(images.stats());              // 18 full steps, compute fraction 0.36 (2.78x), peak cache bytes
            System.out.println(images.calls());              // TorchScript calls per block and branch
            assertThat(images.stats().fullSteps()).isEqualTo(18);
            assertThat(images.stats().computeFraction()).isEqualTo(0.36);
            assertThat(images.elapsedNanos()).isPositive();
            List<Path> files;
            try (Stream<Path> listing = Files.list(outDir)) {
                files = listing.sorted().toList();
            }
            assertThat(files).hasSize(4);
            assertThat(files.get(1).getFileName().toString()).isEqualTo("sample_1_3.png");
            BufferedImage png = ImageIO.read(files.get(0).toFile());
            assertThat(png.getWidth()).isEqualTo(16 * 8);
            assertThat(png.getHeight()).isEqualTo(16 * 8);
            int expectedRed = (int) Math.rint((Math.max(-1, Math.min(1, first[0])) + 1) / 2 * 255);
            assertThat((png.getRGB(0, 0) >> 16) & 0xff).isEqualTo(expectedRed);
            images.writeGrid(outDir.resolve("grid.png"), 4, 2);
            assertThat(ImageIO.read(outDir.resolve("grid.png").toFile()).getWidth()).isEqualTo((4 * 17 + 1) * 2);
        }
    }
}
