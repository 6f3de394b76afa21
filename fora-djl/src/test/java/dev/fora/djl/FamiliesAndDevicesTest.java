package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.modality.cv.Image;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.awt.image.BufferedImage;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The model family a manifest names and the views it builds; the DJL device a pipeline runs on
 * (the CPU here: this host has no GPU, and asking for one is a typed error); the images as DJL
 * {@link Image}s.
 */
class FamiliesAndDevicesTest {

    @Test
    void theManifestNamesTheFamilyAndTheFamilyBuildsTheView() throws Exception {
        DiTPipeline shipped = TestModels.pipeline();
        assertThat(shipped.manifest().family()).isSameAs(ModelFamily.DIT);
        assertThat(shipped.manifest().hasFusedSteps()).isTrue();
        try (TorchScriptModel m = shipped.newModel()) {
            assertThat(m).isInstanceOf(TorchScriptDiT.class);
        }
        try (DiTPipeline pixart = DiTPipeline.load(FamilyGoldenParityTest.FAMILIES.resolve("pixart-small"))) {
            assertThat(pixart.manifest().family()).isSameAs(ModelFamily.PIXART_ALPHA);
            assertThat(pixart.manifest().hasFusedSteps()).as("PixArt exports no fused steps").isFalse();
            try (TorchScriptModel m = pixart.newModel()) {
                assertThat(m).isInstanceOf(TorchScriptPixArt.class);
            }
            int before = pixart.manager().getManagedArrays().size();
            assertThatThrownBy(pixart::newDiT).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("pixart-alpha").hasMessageContaining("newModel()");
            assertThat(pixart.manager().getManagedArrays()).hasSize(before);
        }
        assertThatThrownBy(shipped::newPixArt).isInstanceOf(IllegalStateException.class).hasMessageContaining("dit model");
        assertThat(ModelFamily.forId("pixart-alpha")).isSameAs(ModelFamily.PIXART_ALPHA);
        assertThatThrownBy(() -> ModelFamily.forId("unet")).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("architecture.family \"unet\" is not supported (\"dit\" or \"pixart-alpha\")");
    }

    @Test
    void aPipelineRunsOnTheCpuItIsGiven() throws Exception {
        try (DiTPipeline p = DiTPipeline.load(TestModels.modelDir(), DiTPipeline.Options.defaults()
                .withDevice(Device.cpu()).withClassifier(false))) {
            assertThat(p.device()).isEqualTo(Device.cpu());
            GeneratedImages images = p.generate(GenerationRequest.builder(1, 2).steps(3).policy("fora:2").build());
            assertThat(images.count()).isEqualTo(2);
            try (TorchScriptModel m = p.newModel()) {
                assertThat(m.ops().rootManager().getDevice()).isEqualTo(Device.cpu());
            }
        }
        assertThat(DiTPipeline.Options.defaults().device()).isEqualTo(Device.cpu());
    }

    @Test
    void aGpuTheHostDoesNotHaveIsATypedError() {
        int gpus = ai.djl.engine.Engine.getEngine("PyTorch").getGpuCount();
        Device missing = Device.gpu(gpus); // one past the last GPU: none on a CPU host
        assertThatThrownBy(() -> DiTPipeline.load(TestModels.modelDir(), DiTPipeline.Options.defaults().withDevice(missing)))
                .isInstanceOfSatisfying(ModelLoadException.class, e -> assertThat(e.reason())
                        .isEqualTo(ModelLoadException.Reason.DEVICE_UNAVAILABLE))
                .hasMessageContaining("device " + missing + " was asked for");
    }

    @Test
    void generatedImagesAreDjlImages() throws Exception {
        GeneratedImages images = TestModels.pipeline().generate(GenerationRequest.builder(0, 3).steps(3).build());
        long[] shape = images.shape();
        List<Image> all = images.djlImages();
        assertThat(all).hasSize(2);
        for (int i = 0; i < 2; i++) {
            Image img = images.djlImage(i);
            assertThat(img.getWidth()).isEqualTo((int) shape[3]);
            assertThat(img.getHeight()).isEqualTo((int) shape[2]);
            BufferedImage awt = (BufferedImage) img.getWrappedImage();
            float[] chw = images.image(i);
            int plane = (int) (shape[2] * shape[3]);
            int x = 5;
            int y = 7;
            int p = y * (int) shape[3] + x;
            int rgb = awt.getRGB(x, y);
            assertThat((rgb >> 16) & 0xff).isEqualTo(Images.toByte(chw[p]));
            assertThat((rgb >> 8) & 0xff).isEqualTo(Images.toByte(chw[plane + p]));
            assertThat(rgb & 0xff).isEqualTo(Images.toByte(chw[2 * plane + p]));
            try (NDManager m = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
                NDArray a = img.toNDArray(m); // DJL's own view: [H, W, 3] bytes
                assertThat(a.getShape().getShape()).containsExactly(shape[2], shape[3], 3);
            }
        }
        assertThat(all.get(1).getWidth()).isEqualTo((int) shape[3]);
        assertThatThrownBy(() -> images.djlImage(2)).isInstanceOf(IndexOutOfBoundsException.class);
    }
}
