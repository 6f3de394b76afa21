package dev.fora.djl;

import java.nio.file.Files;
import java.nio.file.Path;

/** The model the tests run on: the shipped {@code fora-examples/model/dit-patterns}. */
final class TestModels {

    private static DiTPipeline shared;

    private TestModels() {
    }

    /** The shipped model directory (surefire passes {@code fora.test.model}). */
    static Path modelDir() {
        Path shipped = Path.of(System.getProperty("fora.test.model", "../fora-examples/model/dit-patterns"));
        if (!Files.isRegularFile(shipped.resolve(ModelManifest.FILE_NAME))) {
            throw new AssertionError("the shipped model is missing: no " + ModelManifest.FILE_NAME + " in " + shipped);
        }
        return shipped;
    }

    /** One pipeline shared by the tests of a JVM (loading takes a moment); never closed by tests. */
    static synchronized DiTPipeline pipeline() throws ModelLoadException {
        if (shared == null) {
            shared = DiTPipeline.load(modelDir());
        }
        return shared;
    }
}
