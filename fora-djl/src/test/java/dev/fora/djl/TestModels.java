package dev.fora.djl;

import dev.fora.model.ShippedModel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** The model the tests run on: the shipped one ({@code fora-model}, a test dependency), extracted to {@code fora.cache.dir}. */
final class TestModels {

    private static DiTPipeline shared;

    private TestModels() {
    }

    /** The shipped model's directory. */
    static Path modelDir() {
        try {
            return ShippedModel.extract();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract the shipped model", e);
        }
    }

    /** One pipeline shared by the tests of a JVM (loading takes a moment); never closed by tests. */
    static synchronized DiTPipeline pipeline() throws ModelLoadException {
        if (shared == null) {
            shared = DiTPipeline.load(modelDir());
        }
        return shared;
    }
}
