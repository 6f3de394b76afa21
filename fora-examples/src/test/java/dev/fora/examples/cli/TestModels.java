package dev.fora.examples.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;

/**
 * The model directory the end-to-end tests run on: {@code fora.test.model} (the shipped
 * model) if it exists, else {@code fora.test.fallbackModel} (a random-weights export of the
 * same format); the tests are skipped when neither exists.
 */
final class TestModels {

    private TestModels() {
    }

    static Path model() {
        for (String key : new String[] {"fora.test.model", "fora.test.fallbackModel"}) {
            String p = System.getProperty(key);
            if (p != null && !p.isBlank() && Files.isRegularFile(Path.of(p, "manifest.json"))) {
                return Path.of(p);
            }
        }
        Assumptions.abort("no model directory: neither fora.test.model nor fora.test.fallbackModel exists");
        return null;
    }

    /** Whether the model has a classifier (the random stand-in has none). */
    static boolean hasClassifier(Path model) {
        return Files.isRegularFile(model.resolve("classifier.pt"));
    }
}
