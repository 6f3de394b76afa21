package dev.fora.examples.cli;

import dev.fora.model.ShippedModel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** The model directory the end-to-end tests run on: the shipped model, extracted to {@code fora.cache.dir}. */
final class TestModels {

    private TestModels() {
    }

    static Path model() {
        try {
            return ShippedModel.extract();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract the shipped model", e);
        }
    }
}
