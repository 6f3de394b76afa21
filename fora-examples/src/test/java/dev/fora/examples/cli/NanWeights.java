package dev.fora.examples.cli;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * A copy of a model directory whose DiT has NaN weights, made without Python: a TorchScript
 * file is a zip archive with one stored (uncompressed) entry per tensor under {@code data/},
 * so the largest one (a float32 weight matrix) is rewritten with NaN, and the manifest's
 * digest and size follow.
 */
final class NanWeights {

    private NanWeights() {
    }

    static Path copy(Path model, Path target) throws IOException {
        Files.createDirectories(target);
        try (var files = Files.list(model)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                if (!f.getFileName().toString().equals("dit.pt")) {
                    Files.copy(f, target.resolve(f.getFileName()));
                }
            }
        }
        Path dit = target.resolve("dit.pt");
        writeWithNanTensor(model.resolve("dit.pt"), dit);
        Path manifest = target.resolve("manifest.json");
        JsonObject json = JsonParser.parseString(Files.readString(manifest)).getAsJsonObject();
        JsonObject entry = json.getAsJsonObject("files").getAsJsonObject("dit");
        entry.addProperty("sha256", sha256(dit));
        entry.addProperty("bytes", Files.size(dit));
        Files.writeString(manifest, new GsonBuilder().setPrettyPrinting().create().toJson(json));
        return target;
    }

    private static void writeWithNanTensor(Path source, Path target) throws IOException {
        try (ZipFile zip = new ZipFile(source.toFile());
             OutputStream file = Files.newOutputStream(target);
             ZipOutputStream out = new ZipOutputStream(file)) {
            List<? extends ZipEntry> entries = Collections.list(zip.entries());
            ZipEntry largest = entries.stream().filter(e -> e.getName().matches(".*/data/\\d+"))
                    .max((a, b) -> Long.compare(a.getSize(), b.getSize())).orElseThrow();
            for (ZipEntry e : new ArrayList<>(entries)) {
                byte[] bytes;
                try (InputStream in = zip.getInputStream(e)) {
                    bytes = in.readAllBytes();
                }
                if (e == largest) {
                    ByteBuffer floats = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
                    while (floats.remaining() >= 4) {
                        floats.putFloat(Float.NaN);
                    }
                }
                ZipEntry copy = new ZipEntry(e.getName());
                if (e.getMethod() == ZipEntry.STORED) {
                    CRC32 crc = new CRC32();
                    crc.update(bytes);
                    copy.setMethod(ZipEntry.STORED);
                    copy.setSize(bytes.length);
                    copy.setCompressedSize(bytes.length);
                    copy.setCrc(crc.getValue());
                }
                out.putNextEntry(copy);
                out.write(bytes);
                out.closeEntry();
            }
        }
    }

    private static String sha256(Path file) throws IOException {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
