package dev.fora.djl;

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
 * little-endian float32 arrays, committed in {@code src/test/resources/golden} for the shipped
 * model.
 */
final class Goldens {

    private final Path dir;
    private final JsonObject index;

    private Goldens(Path dir, JsonObject index) {
        this.dir = dir;
        this.index = index;
    }

    /** The committed goldens, checked to come from the {@code dit.pt} of the model at {@code modelDir}. */
    static Goldens forModel(Path modelDir) throws IOException {
        String sha = ModelDirectory.open(modelDir).manifest().file(ModelManifest.DIT).orElseThrow().sha256();
        Path committed = Path.of(System.getProperty("fora.test.golden", "src/test/resources/golden"));
        if (!Files.isRegularFile(committed.resolve("index.json"))) {
            throw new AssertionError("the goldens are missing: run fora_tools.goldens --model " + modelDir + " --out "
                    + committed + " and commit them");
        }
        Goldens g = read(committed);
        if (!g.modelSha256().equals(sha)) {
            throw new AssertionError("the goldens in " + committed + " were made from dit.pt " + g.modelSha256()
                    + " but the model's dit.pt is " + sha + ": regenerate them with fora_tools.goldens");
        }
        return g;
    }

    static Goldens read(Path dir) throws IOException {
        try (Reader r = Files.newBufferedReader(dir.resolve("index.json"))) {
            return new Goldens(dir, JsonParser.parseReader(r).getAsJsonObject());
        }
    }

    String modelSha256() {
        return index.get("model_sha256").getAsString();
    }

    JsonObject index() {
        return index;
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
