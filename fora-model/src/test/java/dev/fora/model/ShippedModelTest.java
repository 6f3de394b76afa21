package dev.fora.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ShippedModelTest {

    @TempDir
    Path tmp;

    /** A jar whose manifest declares the right digest of {@code dit}. */
    private ClassLoader jarWith(byte[] dit) throws IOException {
        return jarWith(dit, ShippedModel.sha256(dit));
    }

    private ClassLoader jarWith(byte[] dit, String declaredSha) throws IOException {
        Path root = tmp.resolve("jar");
        Path dir = root.resolve(ShippedModel.RESOURCE_ROOT);
        Files.createDirectories(dir);
        Files.write(dir.resolve("dit.pt"), dit);
        String manifest = "{\"format\": \"fora4j-dit\", \"files\": {\"dit\": {\"path\": \"dit.pt\", \"sha256\": \""
                + declaredSha + "\", \"bytes\": " + dit.length + "}}}";
        Files.writeString(dir.resolve("manifest.json"), manifest, StandardCharsets.UTF_8);
        return new URLClassLoader(new URL[] {root.toUri().toURL()}, null);
    }

    @Test
    void extractsOnceVerifiesAndReuses() throws IOException {
        byte[] dit = "not really torchscript".getBytes(StandardCharsets.UTF_8);
        ClassLoader loader = jarWith(dit);
        Path cache = tmp.resolve("cache");
        Path dir = ShippedModel.extract(cache, loader);
        assertThat(dir.getParent()).isEqualTo(cache.resolve("models"));
        assertThat(dir.getFileName().toString()).startsWith("dit-patterns-");
        assertThat(Files.readAllBytes(dir.resolve("dit.pt"))).isEqualTo(dit);
        assertThat(dir.resolve("manifest.json")).exists();
        long modified = Files.getLastModifiedTime(dir.resolve("dit.pt")).toMillis();

        // second use: the same directory, not rewritten
        assertThat(ShippedModel.extract(cache, loader)).isEqualTo(dir);
        assertThat(Files.getLastModifiedTime(dir.resolve("dit.pt")).toMillis()).isEqualTo(modified);
        try (var list = Files.list(cache.resolve("models"))) {
            assertThat(list.count()).isEqualTo(1); // no partial directories left behind
        }
    }

    @Test
    void replacesADamagedCopy() throws IOException {
        byte[] dit = "weights".getBytes(StandardCharsets.UTF_8);
        ClassLoader loader = jarWith(dit);
        Path cache = tmp.resolve("cache");
        Path dir = ShippedModel.extract(cache, loader);
        Files.write(dir.resolve("dit.pt"), new byte[] {1, 2});
        assertThat(ShippedModel.extract(cache, loader)).isEqualTo(dir);
        assertThat(Files.readAllBytes(dir.resolve("dit.pt"))).isEqualTo(dit);
    }

    @Test
    void rejectsAFileThatDoesNotMatchItsDigest() throws IOException {
        byte[] dit = "weights".getBytes(StandardCharsets.UTF_8);
        ClassLoader loader = jarWith(dit, "0".repeat(64));
        Path cache = tmp.resolve("cache");
        assertThatThrownBy(() -> ShippedModel.extract(cache, loader)).isInstanceOf(IOException.class)
                .hasMessageContaining("SHA-256");
        try (var list = Files.list(cache.resolve("models"))) {
            assertThat(list.count()).isZero();
        }
    }

    @Test
    void saysSoWhenTheBuildHasNoModel() {
        ClassLoader empty = new URLClassLoader(new URL[0], null);
        assertThatThrownBy(() -> ShippedModel.extract(tmp, empty)).isInstanceOf(IOException.class)
                .hasMessageContaining("dev.fora:fora-model");
    }
}
