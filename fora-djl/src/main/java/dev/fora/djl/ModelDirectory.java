package dev.fora.djl;

import dev.fora.djl.ModelLoadException.Reason;
import dev.fora.djl.ModelManifest.FileEntry;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.Objects;

/**
 * An exported model directory whose manifest has been read and whose files have been checked
 * against it (present, expected size, expected SHA-256). Opening one loads nothing into
 * native memory; {@link DiTPipeline#load(ModelDirectory, DiTPipeline.Options)} does that.
 */
public final class ModelDirectory {

    private final Path root;
    private final ModelManifest manifest;

    private ModelDirectory(Path root, ModelManifest manifest) {
        this.root = root;
        this.manifest = manifest;
    }

    /**
     * Reads the manifest of {@code dir} and verifies every file it lists (size and SHA-256).
     *
     * @throws ModelLoadException naming the file at fault: the directory or a file is missing
     *     ({@code MISSING_FILE}), a file has the wrong size or digest ({@code CORRUPT_FILE}),
     *     the manifest is of another format version ({@code UNSUPPORTED_VERSION}), malformed
     *     ({@code BAD_MANIFEST}) or inconsistent ({@code SHAPE_MISMATCH})
     */
    public static ModelDirectory open(Path dir) throws ModelLoadException {
        return open(dir, true);
    }

    /**
     * Like {@link #open(Path)}; with {@code verifyDigests} false only sizes are checked (for
     * multi-gigabyte models whose files were verified before).
     */
    public static ModelDirectory open(Path dir, boolean verifyDigests) throws ModelLoadException {
        Objects.requireNonNull(dir, "dir");
        Path root = dir.toAbsolutePath().normalize();
        if (!Files.isDirectory(root)) {
            throw new ModelLoadException(Reason.MISSING_FILE, root, "model directory does not exist");
        }
        ModelManifest manifest = ModelManifest.read(root.resolve(ModelManifest.FILE_NAME));
        for (Map.Entry<String, FileEntry> e : manifest.files().entrySet()) {
            verify(root, e.getKey(), e.getValue(), verifyDigests);
        }
        return new ModelDirectory(root, manifest);
    }

    private static void verify(Path root, String role, FileEntry entry, boolean digest) throws ModelLoadException {
        Path file = root.resolve(entry.path()).normalize();
        if (!Files.isRegularFile(file)) {
            throw new ModelLoadException(Reason.MISSING_FILE, file, "the manifest lists it as the " + role
                    + " file but it does not exist");
        }
        long size;
        try {
            size = Files.size(file);
        } catch (IOException e) {
            throw new ModelLoadException(Reason.MISSING_FILE, file, ModelLoadException.unreadable(e), e);
        }
        if (size != entry.bytes()) {
            throw new ModelLoadException(Reason.CORRUPT_FILE, file, "is " + size + " bytes but the manifest says "
                    + entry.bytes() + " (truncated or replaced?)");
        }
        if (digest) {
            String actual = sha256(file);
            if (!actual.equals(entry.sha256())) {
                throw new ModelLoadException(Reason.CORRUPT_FILE, file, "SHA-256 is " + actual + " but the manifest says "
                        + entry.sha256());
            }
        }
    }

    /** Lower-case hex SHA-256 of a file. */
    static String sha256(Path file) throws ModelLoadException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
        byte[] buf = new byte[1 << 16];
        try (InputStream in = Files.newInputStream(file)) {
            int n;
            while ((n = in.read(buf)) > 0) {
                md.update(buf, 0, n);
            }
        } catch (IOException e) {
            throw new ModelLoadException(Reason.MISSING_FILE, file, ModelLoadException.unreadable(e), e);
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /** The directory (absolute). */
    public Path root() {
        return root;
    }

    /** The validated manifest. */
    public ModelManifest manifest() {
        return manifest;
    }

    /** The path of the file of a role. */
    public Path file(String role) {
        FileEntry entry = manifest.file(role).orElseThrow(() -> new IllegalArgumentException(
                "the manifest of " + root + " lists no " + role + " file"));
        return root.resolve(entry.path()).normalize();
    }

    @Override
    public String toString() {
        return "ModelDirectory[" + root + ", " + manifest.name() + "]";
    }
}
