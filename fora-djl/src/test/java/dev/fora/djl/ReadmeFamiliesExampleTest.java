package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.model.TextEmbeddings;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's PixArt-α example ("Model families"), as written there, on the small PixArt of the tests. */
class ReadmeFamiliesExampleTest {

    @TempDir
    Path out;

    @Test
    void pixartFromAnNpzToDecodedPngs() throws Exception {
        Path families = FamilyGoldenParityTest.FAMILIES;
        TextEmbeddings prompts = TextEmbeddingFiles.read(families.resolve("pixart-small-prompts.npz")); // [N, 120, 4096] + mask
        GeneratedImages images;
        List<Path> files;
        try (DiTPipeline pixart = DiTPipeline.load(families.resolve("pixart-small"))) {
            images = pixart.generate(GenerationRequest.builder(prompts)
                    .sampler("dpms").steps(20).cfgScale(4.5).policy("fora:2").seed(0).build());
            files = images.writePngs(out, "pixart_", 1);   // decoded images; images.latents() has the latents
        }
        assertThat(files).hasSize(3);
        assertThat(files.get(2).getFileName()).hasToString("pixart_2.png");
        BufferedImage png = ImageIO.read(files.get(0).toFile());
        assertThat(png.getWidth()).isEqualTo(16);
        assertThat(images.decoded()).isTrue();
        assertThat(images.latentShape()).containsExactly(3, 4, 8, 8);
        assertThat(images.stats().fullSteps()).isEqualTo(11);
    }
}
