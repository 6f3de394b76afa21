package dev.fora.djl;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.Reader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The golden references written by {@code fora_tools.goldens}: {@code index.json} plus raw
 * little-endian float32 arrays. The committed goldens ({@code src/test/resources/golden})
 * belong to the shipped model; while they are absent, goldens generated for the stand-in
 * model ({@code fora.test.fallbackGolden}) are used if they match it.
 */
final class Goldens {

    private final Path dir;
    private final JsonObject index;

    private Goldens(Path dir, JsonObject index) {
        this.dir = dir;
        this.index = index;
    }

    /** The goldens for the model at {@code modelDir}; skips the test if there are none for it. */
    static Goldens forModel(Path modelDir) throws IOException {
        String sha = ModelDirectory.open(modelDir).manifest().file(ModelManifest.DIT).orElseThrow().sha256();
        Path committed = Path.of(System.getProperty("fora.test.golden", "src/test/resources/golden"));
        Path fallback = Path.of(System.getProperty("fora.test.fallbackGolden", "/tmp/golden-random"));
        for (Path dir : new Path[] {committed, fallback}) {
            Path idx = dir.resolve("index.json");
            if (Files.isRegularFile(idx)) {
                Goldens g = read(dir);
                if (g.modelSha256().equals(sha)) {
                    return g;
                }
                if (dir == committed && modelDir.toAbsolutePath().normalize()
                        .equals(TestModels.shipped().toAbsolutePath().normalize())) {
                    throw new AssertionError("the committed goldens in " + dir + " were made from dit.pt " + g.modelSha256()
                            + " but the shipped model's dit.pt is " + sha + ": regenerate them with fora_tools.goldens");
                }
            }
        }
        assumeTrue(false, "no golden references for the model " + modelDir + " (dit.pt " + sha + ")");
        throw new AssertionError("unreachable");
    }

    static Goldens read(Path dir) throws IOException {
        try (Reader r = Files.newBufferedReader(dir.resolve("index.json"))) {
            return new Goldens(dir, JsonParser.parseReader(r).getAsJsonObject());
        }
    }

    String modelSha256() {
        return index.get("model_sha256").getAsString();
    }

    JsonObject components() {
        return index.getAsJsonObject("components");
    }

    /**
     * The Python classifier's outputs, if the goldens have them:
     * {@code {"input": array [N,3,H,W], "logits": array [N,classes], "features": array [N,64]}}.
     */
    JsonObject classifier() {
        return index.has("classifier") && index.get("classifier").isJsonObject() ? index.getAsJsonObject("classifier") : null;
    }

    List<JsonObject> trajectories() {
        List<JsonObject> out = new ArrayList<>();
        for (JsonElement e : index.getAsJsonArray("trajectories")) {
            out.add(e.getAsJsonObject());
        }
        return out;
    }

    JsonObject trajectory(String name) {
        for (JsonObject t : trajectories()) {
            if (t.get("name").getAsString().equals(name)) {
                return t;
            }
        }
        throw new AssertionError("no golden trajectory " + name);
    }

    /** Shape of a named array. */
    long[] shape(String name) {
        var arr = index.getAsJsonObject("arrays").getAsJsonObject(name).getAsJsonArray("shape");
        long[] s = new long[arr.size()];
        for (int i = 0; i < s.length; i++) {
            s[i] = arr.get(i).getAsLong();
        }
        return s;
    }

    /** Values of a named array, row-major. */
    float[] array(String name) throws IOException {
        String file = index.getAsJsonObject("arrays").getAsJsonObject(name).get("file").getAsString();
        byte[] bytes = Files.readAllBytes(dir.resolve(file));
        float[] out = new float[bytes.length / 4];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        long n = 1;
        for (long d : shape(name)) {
            n *= d;
        }
        if (n != out.length) {
            throw new IOException(file + " holds " + out.length + " floats but its shape needs " + n);
        }
        return out;
    }

    static int[] ints(JsonElement array) {
        var a = array.getAsJsonArray();
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).getAsInt();
        }
        return out;
    }

    static double maxAbsDiff(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new AssertionError("lengths differ: " + a.length + " vs " + b.length);
        }
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs((double) a[i] - b[i]);
            if (Double.isNaN(d)) {
                return Double.NaN;
            }
            m = Math.max(m, d);
        }
        return m;
    }
}
