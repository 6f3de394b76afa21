package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.model.TextEmbeddings;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The PixArt-α example of docs/model-families.md ("Text embeddings"), as written there, on the
 * small PixArt of the tests. {@code DocsExamplesTest} (fora-examples) checks that the snippet still
 * appears here line by line.
 */
class ReadmeFamiliesExampleTest {

    @TempDir
    Path outDir;

    @Test
    void pixartFromAnNpzToDecodedPngs() throws Exception {
        Path families = FamilyGoldenParityTest.FAMILIES;
        Path promptsFile = families.resolve("pixart-small-prompts.npz");
        Path pixartDir = families.resolve("pixart-small");
        TextEmbeddings prompts = TextEmbeddingFiles.read(promptsFile);   // [N, 120, 4096] + mask
        try (DiTPipeline pixart = DiTPipeline.load(pixartDir)) {
            GeneratedImages images = pixart.generate(GenerationRequest.builder(prompts)
                    .sampler("dpms").steps(20).cfgScale(4.5).policy("fora:2").seed(0).build());
            images.writePngs(outDir, "pixart_", 1);   // decoded images; images.latents() has the latents
            assertThat(images.decoded()).isTrue();
            assertThat(images.latentShape()).containsExactly(3, 4, 8, 8);
            assertThat(images.stats().fullSteps()).isEqualTo(11);
        }
        assertThat(outDir.resolve("pixart_2.png")).isRegularFile();
        assertThat(outDir.resolve("pixart_3.png")).doesNotExist();
        BufferedImage png = ImageIO.read(outDir.resolve("pixart_0.png").toFile());
        assertThat(png.getWidth()).isEqualTo(16);
    }
}
