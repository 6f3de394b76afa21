package dev.fora.djl;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The model the tests run on: the shipped {@code fora-examples/model/dit-shapes}. While it is
 * not committed yet, the randomly initialised export of the same shape at
 * {@code fora.test.fallbackModel} stands in; tests that need trained weights call
 * {@link #requireShipped()}.
 */
final class TestModels {

    private static DiTPipeline shared;

    private TestModels() {
    }

    static Path shipped() {
        return Path.of(System.getProperty("fora.test.model", "../fora-examples/model/dit-shapes"));
    }

    /** The shipped model directory, or the stand-in while the shipped one is absent. */
    static Path modelDir() {
        Path shipped = shipped();
        if (Files.isRegularFile(shipped.resolve(ModelManifest.FILE_NAME))) {
            return shipped;
        }
        Path fallback = Path.of(System.getProperty("fora.test.fallbackModel", "/tmp/dit-shapes-random"));
        assumeTrue(Files.isRegularFile(fallback.resolve(ModelManifest.FILE_NAME)),
                "neither the shipped model " + shipped + " nor the stand-in " + fallback + " exists");
        return fallback;
    }

    /** Skips the calling test while the shipped (trained) model is absent. */
    static void requireShipped() {
        assumeTrue(Files.isRegularFile(shipped().resolve(ModelManifest.FILE_NAME)),
                "the shipped model " + shipped() + " is not committed yet");
    }

    /** One pipeline shared by the tests of a JVM (loading takes a moment); never closed by tests. */
    static synchronized DiTPipeline pipeline() throws ModelLoadException {
        if (shared == null) {
            shared = DiTPipeline.load(modelDir());
        }
        return shared;
    }
}
