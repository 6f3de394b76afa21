package dev.fora.examples.cli;

import java.nio.file.Files;
import java.nio.file.Path;

/** The model directory the end-to-end tests run on: the shipped model ({@code fora.test.model}). */
final class TestModels {

    private TestModels() {
    }

    static Path model() {
        String p = System.getProperty("fora.test.model");
        if (p == null || p.isBlank() || !Files.isRegularFile(Path.of(p, "manifest.json"))) {
            throw new IllegalStateException("the shipped model is missing: fora.test.model = " + p
                    + " has no manifest.json (expected fora-examples/model/dit-patterns)");
        }
        return Path.of(p);
    }
}
