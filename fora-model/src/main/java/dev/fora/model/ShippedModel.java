package dev.fora.model;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The model that ships inside the {@code dev.fora:fora-model} jar (and so inside the {@code fora}
 * and {@code fora-spark} jars), under the class-path folder {@value #RESOURCE_ROOT}: a small
 * class-conditional DiT on 16x16 patterns with its classifier. An application gets its directory
 * with {@code DiTPipeline.load(ShippedModel.extract())}.
 *
 * <p>Native code cannot load TorchScript from inside a jar, so on first
 * use the manifest and the files it lists are copied to a cache directory, each file's
 * SHA-256 checked against the manifest, and the directory moved into place atomically. Later
 * runs reuse it (after checking sizes; a damaged copy is replaced).
 *
 * <p>Cache directory: {@code $FORA_CACHE_DIR}, else the system property
 * {@code fora.cache.dir}, else {@code $XDG_CACHE_HOME/fora4j}, else {@code ~/.cache/fora4j};
 * the model lands in {@code models/dit-patterns-<first 12 hex of the manifest's SHA-256>}, so a
 * new jar with a new model never reuses an old copy.
 */
public final class ShippedModel {

    /** Class-path folder of the shipped model. */
    public static final String RESOURCE_ROOT = "fora/models/dit-patterns";
    /** Model name (directory prefix in the cache). */
    public static final String NAME = "dit-patterns";

    private ShippedModel() {
    }

    /** The cache root described in the class comment. */
    public static Path cacheRoot() {
        String env = System.getenv("FORA_CACHE_DIR");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        String prop = System.getProperty("fora.cache.dir");
        if (prop != null && !prop.isBlank()) {
            return Path.of(prop);
        }
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank()) {
            return Path.of(xdg, "fora4j");
        }
        return Path.of(System.getProperty("user.home"), ".cache", "fora4j");
    }

    /** Extracts the shipped model to {@link #cacheRoot()} if needed; returns its directory. */
    public static Path extract() throws IOException {
        return extract(cacheRoot());
    }

    /**
     * Extracts the shipped model under {@code cacheRoot} if it is not there already.
     *
     * @return the model directory
     * @throws IOException if this build has no shipped model, a file does not match the
     *     manifest, or the cache directory is not writable
     */
    public static Path extract(Path cacheRoot) throws IOException {
        return extract(cacheRoot, ShippedModel.class.getClassLoader());
    }

    /** Like {@link #extract(Path)}, reading the model from the given class loader's resources. */
    public static Path extract(Path cacheRoot, ClassLoader loader) throws IOException {
        byte[] manifestBytes = readResource(loader, "manifest.json");
        Map<String, FileSpec> files = listedFiles(manifestBytes);
        String id = sha256(manifestBytes).substring(0, 12);
        Path models = cacheRoot.resolve("models");
        Path target = models.resolve(NAME + "-" + id);
        if (isComplete(target, manifestBytes, files)) {
            return target;
        }
        try {
            Files.createDirectories(models);
        } catch (IOException e) {
            throw new IOException("cannot create the model cache directory " + models + " (set FORA_CACHE_DIR to a writable"
                    + " directory): " + e.getMessage(), e);
        }
        Path staging = Files.createTempDirectory(models, NAME + "-" + id + ".partial-");
        try {
            Files.write(staging.resolve("manifest.json"), manifestBytes);
            for (FileSpec f : files.values()) {
                Path out = staging.resolve(f.path()).normalize();
                if (!out.startsWith(staging)) {
                    throw new IOException("the shipped manifest lists a file outside the model directory: " + f.path());
                }
                Files.createDirectories(out.getParent());
                String digest;
                try (InputStream in = openResource(loader, f.path())) {
                    MessageDigest md = newDigest();
                    try (DigestInputStream din = new DigestInputStream(in, md)) {
                        Files.copy(din, out, StandardCopyOption.REPLACE_EXISTING);
                    }
                    digest = HexFormat.of().formatHex(md.digest());
                }
                if (!digest.equals(f.sha256())) {
                    throw new IOException("the shipped " + f.path() + " has SHA-256 " + digest + " but its manifest says "
                            + f.sha256() + " (damaged jar?)");
                }
            }
            if (Files.exists(target)) {
                deleteRecursively(target); // damaged or incomplete earlier copy
            }
            try {
                Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(staging, target);
            } catch (FileAlreadyExistsException e) {
                // another process won the race; use its copy if it is complete
                if (!isComplete(target, manifestBytes, files)) {
                    throw e;
                }
            }
            return target;
        } finally {
            if (Files.exists(staging)) {
                deleteRecursively(staging);
            }
        }
    }

    private record FileSpec(String path, String sha256, long bytes) {
    }

    private static boolean isComplete(Path dir, byte[] manifestBytes, Map<String, FileSpec> files) throws IOException {
        if (!Files.isRegularFile(dir.resolve("manifest.json"))
                || !java.util.Arrays.equals(Files.readAllBytes(dir.resolve("manifest.json")), manifestBytes)) {
            return false;
        }
        for (FileSpec f : files.values()) {
            Path p = dir.resolve(f.path());
            if (!Files.isRegularFile(p) || Files.size(p) != f.bytes()) {
                return false;
            }
        }
        return true;
    }

    private static Map<String, FileSpec> listedFiles(byte[] manifestBytes) throws IOException {
        Map<String, FileSpec> out = new LinkedHashMap<>();
        try {
            JsonObject root = JsonParser.parseString(new String(manifestBytes, StandardCharsets.UTF_8)).getAsJsonObject();
            for (Map.Entry<String, JsonElement> e : root.getAsJsonObject("files").entrySet()) {
                JsonObject f = e.getValue().getAsJsonObject();
                out.put(e.getKey(), new FileSpec(f.get("path").getAsString(), f.get("sha256").getAsString(),
                        f.get("bytes").getAsLong()));
            }
        } catch (JsonParseException | IllegalStateException | NullPointerException | UnsupportedOperationException e) {
            throw new IOException("the shipped model's manifest.json is malformed: " + e.getMessage(), e);
        }
        return out;
    }

    private static byte[] readResource(ClassLoader loader, String name) throws IOException {
        try (InputStream in = openResource(loader, name)) {
            return in.readAllBytes();
        }
    }

    private static InputStream openResource(ClassLoader loader, String name) throws IOException {
        InputStream in = loader.getResourceAsStream(RESOURCE_ROOT + "/" + name);
        if (in == null) {
            throw new IOException("the shipped model is not on the class path (no " + RESOURCE_ROOT + "/" + name
                    + "; it comes with the dev.fora:fora-model jar)");
        }
        return in;
    }

    static String sha256(byte[] bytes) {
        return HexFormat.of().formatHex(newDigest().digest(bytes));
    }

    private static MessageDigest newDigest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }

    private static void deleteRecursively(Path dir) throws IOException {
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }
}
