package dev.fora.core.recording;

import dev.fora.core.cache.BlockRange;
import dev.fora.core.cache.Measurement;
import dev.fora.core.model.BlockLayout;
import dev.fora.core.model.BranchSpec;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.ConditioningSpec;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.TextEmbeddings;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.TreeMap;

/**
 * One uncached generation as the cache sees it: per step the timestep, the tokens entering
 * block 0, every block's modulation vectors, every branch output (the cacheable features,
 * before their gate) and, if the model exposes it, every block's modulated input; all rows of
 * the batch (conditional rows, then unconditional ones when guided). Written by
 * {@link Recorder}; played back by {@link ReplayDiT}.
 *
 * <p>The measurements policies declare follow from these: {@link #modulatedInputChange},
 * {@link #stackResidualChange} and {@link #stackResidualMagnitude} give them per image and step
 * (the block residuals are sums of gated features, as the uncached forward adds them).
 *
 * <p>Size: {@code steps x rows x tokens x hidden x 4} bytes per recorded tensor; per step
 * {@code 1 + features + depth} tensors (tokens, features, modulated inputs). The shipped
 * 6-block model: 16 MB per guided 50-step image. DiT-XL/2 (256 tokens of 1152, 28 blocks):
 * about 10 GB per image, so record few images of large models.
 *
 * <h2>File format</h2>
 * The bytes {@code FORA4J-REC}, a version int (1), the length of a UTF-8
 * {@link Properties} header and the header (model shape and layout, steps, images, guidance,
 * labels, sampler and seed as metadata), then per step the timestep and the tensors in the
 * order above as big-endian float32.
 */
public final class Recording {

    private static final byte[] MAGIC = "FORA4J-REC".getBytes(StandardCharsets.US_ASCII);
    private static final int VERSION = 1;

    private final DiTConfig config;
    private final int steps;
    private final int images;
    private final boolean guided;
    private final int[] labels;
    private final Map<String, String> metadata;
    private final float[] timesteps;
    private final float[][] tokens;
    private final float[][][][] modulations;
    private final float[][][] features;
    private final float[][][] modulatedInputs;
    private final float[][] stackResiduals;

    /**
     * @param config the model's shape and layout
     * @param images images in the batch
     * @param guided whether every image ran a conditional and an unconditional row
     * @param labels the class label of each image (class-conditional models), or null
     * @param metadata free text about the run (sampler, guidance scale, seed, model)
     * @param timesteps per step, the timestep the model was fed
     * @param tokens per step, the tokens entering block 0 ({@code rows x T x D})
     * @param modulations per step, block and modulation vector ({@code rows x D})
     * @param features per step and feature (block-major, as {@link DiTConfig#feature}) ({@code rows x T x D})
     * @param modulatedInputs per step and block ({@code rows x T x D}), or null if not recorded
     */
    public Recording(DiTConfig config, int images, boolean guided, int[] labels, Map<String, String> metadata,
            float[] timesteps, float[][] tokens, float[][][][] modulations, float[][][] features,
            float[][][] modulatedInputs) {
        this.config = Objects.requireNonNull(config, "config");
        this.images = images;
        this.guided = guided;
        this.labels = labels == null ? null : labels.clone();
        this.metadata = new LinkedHashMap<>(metadata);
        this.steps = timesteps.length;
        this.timesteps = timesteps;
        this.tokens = tokens;
        this.modulations = modulations;
        this.features = features;
        this.modulatedInputs = modulatedInputs;
        this.stackResiduals = new float[timesteps.length][];
        if (images < 1 || steps < 1) {
            throw new IllegalArgumentException("a recording needs at least one image and one step");
        }
        if (labels != null && labels.length != images) {
            throw new IllegalArgumentException(labels.length + " labels for " + images + " images");
        }
        long perTensor = (long) rows() * config.tokens() * config.hiddenSize();
        int vectors = config.layout().modulation().size();
        for (int s = 0; s < steps; s++) {
            check(tokens[s].length == perTensor, "tokens of step " + s);
            check(modulations[s].length == config.depth(), "modulations of step " + s);
            for (float[][] block : modulations[s]) {
                check(block.length == vectors, "modulation vectors of step " + s);
                for (float[] v : block) {
                    check(v.length == (long) rows() * config.hiddenSize(), "a modulation vector of step " + s);
                }
            }
            check(features[s].length == config.features(), "features of step " + s);
            for (float[] f : features[s]) {
                check(f.length == perTensor, "a feature of step " + s);
            }
            if (modulatedInputs != null) {
                check(modulatedInputs[s].length == config.depth(), "modulated inputs of step " + s);
                for (float[] m : modulatedInputs[s]) {
                    check(m.length == perTensor, "a modulated input of step " + s);
                }
            }
        }
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new IllegalArgumentException("recording: " + what + " has the wrong size");
        }
    }

    // ---- what was recorded -----------------------------------------------------------------------

    /** The model's shape and layout. */
    public DiTConfig config() {
        return config;
    }

    /** Sampler steps. */
    public int steps() {
        return steps;
    }

    /** Images in the batch. */
    public int images() {
        return images;
    }

    /** Whether every image ran a conditional and an unconditional row. */
    public boolean guided() {
        return guided;
    }

    /** Batch rows: {@code images}, or {@code 2 x images} when guided. */
    public int rows() {
        return guided ? 2 * images : images;
    }

    /** The class label of each image, or null. */
    public int[] labels() {
        return labels == null ? null : labels.clone();
    }

    /** Free text about the run (sampler, guidance, seed, model). */
    public Map<String, String> metadata() {
        return new LinkedHashMap<>(metadata);
    }

    /** The timestep the model was fed at {@code step}. */
    public float timestep(int step) {
        return timesteps[step];
    }

    /** Whether the modulated inputs were recorded (needed to replay a {@code ModulatedInputChange}). */
    public boolean hasModulatedInputs() {
        return modulatedInputs != null;
    }

    /** The tokens entering block 0 at {@code step}, all rows (the recording's array: do not modify). */
    public float[] tokens(int step) {
        return tokens[step];
    }

    /** Modulation vector {@code vector} of {@code block} at {@code step}, all rows (do not modify). */
    public float[] modulation(int step, int block, int vector) {
        return modulations[step][block][vector];
    }

    /** The output of feature {@code feature} (a {@link DiTConfig#feature} index) at {@code step}, all rows (do not modify). */
    public float[] feature(int step, int feature) {
        return features[step][feature];
    }

    /** The modulated input of {@code block} at {@code step}, all rows (do not modify). */
    public float[] modulatedInput(int step, int block) {
        if (modulatedInputs == null) {
            throw new UnsupportedOperationException("the modulated inputs were not recorded (the model does not expose them)");
        }
        return modulatedInputs[step][block];
    }

    /** The conditioning of every row: the labels (then the null label when guided), or empty text for text models. */
    public Conditioning conditioning() {
        if (config.conditioning() instanceof ConditioningSpec.Classes classes) {
            int[] all = new int[rows()];
            for (int r = 0; r < rows(); r++) {
                all[r] = r < images ? (labels == null ? 0 : labels[r]) : classes.nullLabel();
            }
            return ClassLabels.of(all);
        }
        ConditioningSpec.Text text = (ConditioningSpec.Text) config.conditioning();
        boolean[] mask = new boolean[rows() * text.tokens()];
        Arrays.fill(mask, true);
        return new TextEmbeddings(text.tokens(), text.width(), new float[rows() * text.tokens() * text.width()], mask);
    }

    // ---- measurements --------------------------------------------------------------------------

    /** The batch rows of one image. */
    public int[] rowsOf(int image) {
        return guided ? new int[] {image, image + images} : new int[] {image};
    }

    /**
     * The relative L1 change of {@code block}'s modulated input between {@code step - 1} and
     * {@code step} over {@code image}'s rows: TeaCache's signal ({@code NaN} at step 0).
     */
    public double modulatedInputChange(int step, int image, int block) {
        if (step == 0) {
            return Double.NaN;
        }
        return relativeChange(modulatedInput(step, block), modulatedInput(step - 1, block), image);
    }

    /**
     * The residual of the whole block stack, {@code h_out(depth-1) - tokens}, at {@code step}
     * (all rows): the sum of every branch output through its gate, as the uncached forward adds them
     * (the recording's array: do not modify).
     */
    public synchronized float[] stackResidual(int step) {
        if (stackResiduals[step] == null) {
            stackResiduals[step] = computeStackResidual(step);
        }
        return stackResiduals[step];
    }

    private float[] computeStackResidual(int step) {
        return rangeResidual(step, 0, config.depth());
    }

    /**
     * The residual of blocks {@code from .. to-1}, {@code h_out(to-1) - h_in(from)}, at
     * {@code step} (all rows; a new array): the sum of their branch outputs through their gates.
     */
    public float[] rangeResidual(int step, int from, int to) {
        int d = config.hiddenSize();
        int t = config.tokens();
        double[] r = new double[rows() * t * d];
        BlockLayout layout = config.layout();
        for (int b = from; b < to; b++) {
            for (int i = 0; i < layout.size(); i++) {
                BranchSpec spec = layout.branch(i);
                float[] f = features[step][config.feature(b, i)];
                float[] gate = spec.gated() ? modulations[step][b][spec.gate()] : null;
                for (int row = 0; row < rows(); row++) {
                    for (int k = 0; k < t; k++) {
                        int base = (row * t + k) * d;
                        for (int c = 0; c < d; c++) {
                            r[base + c] += gate == null ? f[base + c] : (double) gate[row * d + c] * f[base + c];
                        }
                    }
                }
            }
        }
        float[] out = new float[r.length];
        for (int i = 0; i < r.length; i++) {
            out[i] = (float) r[i];
        }
        return out;
    }

    /** The relative L1 change of the stack residual between {@code step - 1} and {@code step} ({@code NaN} at step 0). */
    public double stackResidualChange(int step, int image) {
        if (step == 0) {
            return Double.NaN;
        }
        return relativeChange(stackResidual(step), stackResidual(step - 1), image);
    }

    /**
     * The relative L1 change of block {@code block}'s residual between {@code step - 1} and
     * {@code step}: First-Block-Cache's signal for block 0 ({@code NaN} at step 0).
     */
    public double blockResidualChange(int step, int image, int block) {
        if (step == 0) {
            return Double.NaN;
        }
        return relativeChange(rangeResidual(step, block, block + 1), rangeResidual(step - 1, block, block + 1), image);
    }

    /**
     * Whether {@link #measurement} can read {@code m} off this recording: every per-step
     * measurement of blocks the model has, except the modulated-input change when the modulated
     * inputs were not recorded.
     */
    public boolean records(Measurement m) {
        if (m instanceof Measurement.ModulatedInputChange c) {
            return modulatedInputs != null && c.block() >= 0 && c.block() < config.depth();
        }
        if (m instanceof Measurement.ResidualChange c) {
            return c.block() >= 0 && c.block() < config.depth();
        }
        return m instanceof Measurement.ResidualMagnitude r && r.range().to() <= config.depth();
    }

    /**
     * A policy's measurement for {@code image} at {@code step}, as a generation without a cache
     * measures it: a change against the step before ({@code NaN} at step 0), or a magnitude.
     *
     * @throws IllegalArgumentException if {@link #records} is false for {@code m}
     */
    public double measurement(Measurement m, int step, int image) {
        if (!records(m)) {
            throw new IllegalArgumentException("a recording of this model does not give " + m
                    + (m instanceof Measurement.ModulatedInputChange ? " (the modulated inputs were not recorded)" : ""));
        }
        if (m instanceof Measurement.ModulatedInputChange c) {
            return modulatedInputChange(step, image, c.block());
        }
        if (m instanceof Measurement.ResidualChange c) {
            return blockResidualChange(step, image, c.block());
        }
        BlockRange range = ((Measurement.ResidualMagnitude) m).range();
        return range.from() == 0 && range.to() == config.depth() ? stackResidualMagnitude(step, image)
                : magnitude(rangeResidual(step, range.from(), range.to()), image);
    }

    /** The mean absolute value of the stack residual over {@code image}'s rows at {@code step}. */
    public double stackResidualMagnitude(int step, int image) {
        return magnitude(stackResidual(step), image);
    }

    private double magnitude(float[] r, int image) {
        int per = config.tokens() * config.hiddenSize();
        double sum = 0;
        for (int row : rowsOf(image)) {
            for (int i = row * per; i < (row + 1) * per; i++) {
                sum += Math.abs(r[i]);
            }
        }
        return sum / (per * rowsOf(image).length);
    }

    private double relativeChange(float[] now, float[] before, int image) {
        int per = now.length / rows();
        double num = 0;
        double den = 0;
        for (int row : rowsOf(image)) {
            for (int i = row * per; i < (row + 1) * per; i++) {
                num += Math.abs((double) now[i] - before[i]);
                den += Math.abs(before[i]);
            }
        }
        return Measurement.relativeChange(num, den);
    }

    // ---- file ------------------------------------------------------------------------------------

    /** Bytes of the recorded tensors. */
    public long dataBytes() {
        return dataBytes(config, steps, rows(), modulatedInputs != null);
    }

    /**
     * Bytes of the tensors a recording of {@code steps} steps of {@code rows} batch rows holds
     * (in memory and on disk): what to check before recording.
     */
    public static long dataBytes(DiTConfig config, int steps, int rows, boolean modulatedInputs) {
        long perTensor = (long) rows * config.tokens() * config.hiddenSize() * Float.BYTES;
        long perStep = (1L + config.features() + (modulatedInputs ? config.depth() : 0)) * perTensor
                + (long) config.depth() * config.layout().modulation().size() * rows * config.hiddenSize() * Float.BYTES;
        return perStep * steps;
    }

    /** Writes the recording to {@code file} (replacing it). */
    public void write(Path file) throws IOException {
        try (OutputStream out = Files.newOutputStream(file)) {
            write(out);
        }
    }

    /** Writes the recording to a stream (not closed). */
    public void write(OutputStream stream) throws IOException {
        DataOutputStream out = new DataOutputStream(new BufferedOutputStream(stream, 1 << 16));
        out.write(MAGIC);
        out.writeInt(VERSION);
        byte[] header = header().getBytes(StandardCharsets.UTF_8);
        out.writeInt(header.length);
        out.write(header);
        ByteBuffer buffer = ByteBuffer.allocate(1 << 16);
        for (int s = 0; s < steps; s++) {
            out.writeFloat(timesteps[s]);
            writeFloats(out, buffer, tokens[s]);
            for (float[][] block : modulations[s]) {
                for (float[] v : block) {
                    writeFloats(out, buffer, v);
                }
            }
            for (float[] f : features[s]) {
                writeFloats(out, buffer, f);
            }
            if (modulatedInputs != null) {
                for (float[] m : modulatedInputs[s]) {
                    writeFloats(out, buffer, m);
                }
            }
        }
        out.flush();
    }

    private static void writeFloats(DataOutputStream out, ByteBuffer buffer, float[] values) throws IOException {
        int i = 0;
        while (i < values.length) {
            buffer.clear();
            int n = Math.min(values.length - i, buffer.capacity() / Float.BYTES);
            buffer.asFloatBuffer().put(values, i, n);
            out.write(buffer.array(), 0, n * Float.BYTES);
            i += n;
        }
    }

    private static float[] readFloats(DataInputStream in, byte[] bytes, int count) throws IOException {
        float[] values = new float[count];
        int i = 0;
        while (i < count) {
            int n = Math.min(count - i, bytes.length / Float.BYTES);
            in.readFully(bytes, 0, n * Float.BYTES);
            ByteBuffer.wrap(bytes, 0, n * Float.BYTES).asFloatBuffer().get(values, i, n);
            i += n;
        }
        return values;
    }

    private String header() {
        Map<String, String> p = new TreeMap<>();
        p.put("config.inputSize", Integer.toString(config.inputSize()));
        p.put("config.inChannels", Integer.toString(config.inChannels()));
        p.put("config.patchSize", Integer.toString(config.patchSize()));
        p.put("config.hiddenSize", Integer.toString(config.hiddenSize()));
        p.put("config.depth", Integer.toString(config.depth()));
        p.put("config.numHeads", Integer.toString(config.numHeads()));
        p.put("config.mlpRatio", Double.toString(config.mlpRatio()));
        p.put("config.learnSigma", Boolean.toString(config.learnSigma()));
        List<String> branches = new ArrayList<>();
        for (BranchSpec b : config.layout().branches()) {
            branches.add(b.name() + ":" + b.kind() + ":" + b.gate());
        }
        p.put("config.layout.branches", String.join(",", branches));
        p.put("config.layout.modulation", String.join(",", config.layout().modulation()));
        p.put("config.conditioning", config.conditioning() instanceof ConditioningSpec.Classes c ? "classes:" + c.count()
                : "text:" + ((ConditioningSpec.Text) config.conditioning()).tokens() + ":"
                        + ((ConditioningSpec.Text) config.conditioning()).width());
        p.put("steps", Integer.toString(steps));
        p.put("images", Integer.toString(images));
        p.put("guided", Boolean.toString(guided));
        p.put("modulatedInputs", Boolean.toString(modulatedInputs != null));
        if (labels != null) {
            p.put("labels", join(labels));
        }
        metadata.forEach((k, v) -> p.put("meta." + k, v));
        Properties props = new Properties();
        props.putAll(p);
        StringWriter w = new StringWriter();
        try {
            props.store(w, "FORA4J recording");
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        return w.toString();
    }

    private static String join(int[] values) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < values.length; i++) {
            sb.append(i == 0 ? "" : ",").append(values[i]);
        }
        return sb.toString();
    }

    /**
     * Reads a recording written by {@link #write(Path)}.
     *
     * @throws IOException if the file cannot be read, is not a recording, is corrupt (a header
     *     field out of range, a size that does not match the file, a value that is not finite) or
     *     is larger than the heap can hold
     */
    public static Recording read(Path file) throws IOException {
        long size = Files.size(file);
        try (InputStream in = Files.newInputStream(file)) {
            return read(in, file.toString(), size);
        }
    }

    /** Reads a recording from a stream (not closed); {@code name} appears in errors. */
    public static Recording read(InputStream stream, String name) throws IOException {
        return read(stream, name, -1);
    }

    /** {@code size}: the stream's length in bytes, or -1 if unknown. */
    private static Recording read(InputStream stream, String name, long size) throws IOException {
        DataInputStream in = new DataInputStream(new BufferedInputStream(stream, 1 << 16));
        byte[] magic = new byte[MAGIC.length];
        try {
            in.readFully(magic);
            if (!Arrays.equals(magic, MAGIC)) {
                throw new IOException(name + " is not a FORA4J recording (it does not start with FORA4J-REC)");
            }
            int version = in.readInt();
            if (version != VERSION) {
                throw new IOException(name + " is a recording of format version " + version + "; this library reads " + VERSION);
            }
            int headerLength = in.readInt();
            if (headerLength < 0 || headerLength > 1 << 24) {
                throw corrupt(name, "header length " + headerLength);
            }
            byte[] header = new byte[headerLength];
            in.readFully(header);
            Properties p = new Properties();
            p.load(new StringReader(new String(header, StandardCharsets.UTF_8)));
            DiTConfig config = config(p, name);
            int steps = positive(p, "steps", name);
            int images = positive(p, "images", name);
            boolean guided = bool(p, "guided", name);
            boolean mi = bool(p, "modulatedInputs", name);
            int[] labels = labels(p, images, name);
            Map<String, String> meta = new TreeMap<>();
            for (String k : p.stringPropertyNames()) {
                if (k.startsWith("meta.")) {
                    meta.put(k.substring(5), p.getProperty(k));
                }
            }
            int vectors = config.layout().modulation().size();
            long perTensor;
            long perVector;
            long body;
            try {
                long rows = guided ? 2L * images : images;
                long side = config.inputSize() / config.patchSize();
                perTensor = Math.multiplyExact(Math.multiplyExact(rows, side * side), config.hiddenSize());
                perVector = rows * config.hiddenSize();
                long tensors = 1L + (long) config.depth() * config.layout().size() + (mi ? config.depth() : 0);
                long perStep = Math.addExact(Math.addExact(1, Math.multiplyExact(tensors, perTensor)),
                        Math.multiplyExact((long) config.depth() * vectors, perVector));
                body = Math.multiplyExact(Math.multiplyExact(perStep, steps), Float.BYTES);
            } catch (ArithmeticException e) {
                throw corrupt(name, "the sizes in the header (steps " + steps + ", images " + images
                        + ", config.*) overflow");
            }
            String shape = "steps " + steps + ", images " + images + (guided ? " (guided)" : "");
            long headerBytes = MAGIC.length + 2L * Integer.BYTES + headerLength;
            if (size >= 0 && size - headerBytes != body) {
                throw corrupt(name, "the header (" + shape + ") needs " + body + " bytes of data but the file has "
                        + (size - headerBytes) + (size - headerBytes < body ? " (truncated, or a wrong steps or images)" : ""));
            }
            if (perTensor > Integer.MAX_VALUE - 8) {
                throw corrupt(name, "one tensor of " + shape + " would have " + perTensor + " values, more than a Java array holds");
            }
            Runtime rt = Runtime.getRuntime();
            long free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
            if (body > free) {
                throw new IOException(name + ": the recording needs " + body + " bytes of heap but this JVM has " + free
                        + " free (of " + rt.maxMemory() + ", -Xmx); record fewer images or steps, or give the JVM more heap");
            }
            byte[] bytes = new byte[1 << 16];
            float[] timesteps = new float[steps];
            float[][] tokens = new float[steps][];
            float[][][][] modulations = new float[steps][config.depth()][vectors][];
            float[][][] features = new float[steps][config.features()][];
            float[][][] modulatedInputs = mi ? new float[steps][config.depth()][] : null;
            for (int s = 0; s < steps; s++) {
                timesteps[s] = in.readFloat();
                if (!Float.isFinite(timesteps[s])) {
                    throw corrupt(name, "the timestep of step " + s + " is " + timesteps[s]);
                }
                tokens[s] = finite(readFloats(in, bytes, (int) perTensor), name, "the tokens of step " + s);
                for (int b = 0; b < config.depth(); b++) {
                    for (int v = 0; v < vectors; v++) {
                        modulations[s][b][v] = finite(readFloats(in, bytes, (int) perVector), name,
                                "modulation " + config.layout().modulation().get(v) + " of block " + b + " at step " + s);
                    }
                }
                for (int f = 0; f < config.features(); f++) {
                    features[s][f] = finite(readFloats(in, bytes, (int) perTensor), name, "feature " + f + " at step " + s);
                }
                if (mi) {
                    for (int b = 0; b < config.depth(); b++) {
                        modulatedInputs[s][b] = finite(readFloats(in, bytes, (int) perTensor), name,
                                "the modulated input of block " + b + " at step " + s);
                    }
                }
            }
            if (in.read() != -1) {
                throw new IOException(name + ": data after the last step; not a recording of this header");
            }
            return new Recording(config, images, guided, labels, meta, timesteps, tokens, modulations, features,
                    modulatedInputs);
        } catch (EOFException e) {
            throw new IOException(name + " is truncated (the recording ends before its last step)", e);
        } catch (IllegalArgumentException e) {
            throw corrupt(name, e.getMessage());
        }
    }

    private static IOException corrupt(String name, String what) {
        return new IOException(name + ": corrupt recording: " + what);
    }

    /** The values, or a corrupt-recording error naming the tensor if one is NaN or infinite. */
    private static float[] finite(float[] values, String name, String what) throws IOException {
        for (int i = 0; i < values.length; i++) {
            if (!Float.isFinite(values[i])) {
                throw corrupt(name, what + " holds " + values[i] + " (value " + i + ")");
            }
        }
        return values;
    }

    private static DiTConfig config(Properties p, String name) throws IOException {
        List<BranchSpec> branches = new ArrayList<>();
        String branchList = required(p, "config.layout.branches", name);
        for (String b : branchList.split(",")) {
            String[] parts = b.split(":");
            try {
                branches.add(new BranchSpec(parts[0], BranchSpec.Kind.valueOf(parts[1]), Integer.parseInt(parts[2])));
            } catch (RuntimeException e) { // too few parts, an unknown kind, a gate that is not a number
                throw corrupt(name, "config.layout.branches has \"" + b + "\"; expected NAME:KIND:GATE");
            }
        }
        BlockLayout layout = new BlockLayout(branches, List.of(required(p, "config.layout.modulation", name).split(",")));
        String condition = required(p, "config.conditioning", name);
        String[] cond = condition.split(":");
        ConditioningSpec conditioning;
        try {
            conditioning = cond[0].equals("classes") && cond.length == 2 ? new ConditioningSpec.Classes(Integer.parseInt(cond[1]))
                    : cond[0].equals("text") && cond.length == 3 ? new ConditioningSpec.Text(Integer.parseInt(cond[1]),
                            Integer.parseInt(cond[2])) : null;
        } catch (IllegalArgumentException e) { // a count that is not a number or not positive
            conditioning = null;
        }
        if (conditioning == null) {
            throw corrupt(name, "config.conditioning is \"" + condition + "\"; expected classes:COUNT or text:TOKENS:WIDTH");
        }
        double mlpRatio;
        try {
            mlpRatio = Double.parseDouble(required(p, "config.mlpRatio", name));
        } catch (NumberFormatException e) {
            throw corrupt(name, "config.mlpRatio is not a number");
        }
        return new DiTConfig(positive(p, "config.inputSize", name), positive(p, "config.inChannels", name),
                positive(p, "config.patchSize", name), positive(p, "config.hiddenSize", name), positive(p, "config.depth", name),
                positive(p, "config.numHeads", name), mlpRatio, bool(p, "config.learnSigma", name), layout, conditioning);
    }

    /** The labels, one per image, or null when the header has none. */
    private static int[] labels(Properties p, int images, String name) throws IOException {
        String text = p.getProperty("labels");
        if (text == null) {
            return null;
        }
        int[] labels;
        try {
            labels = Arrays.stream(text.split(",")).mapToInt(x -> Integer.parseInt(x.strip())).toArray();
        } catch (NumberFormatException e) {
            throw corrupt(name, "labels \"" + text + "\" are not integers");
        }
        if (labels.length != images) {
            throw corrupt(name, "labels has " + labels.length + " entries but images is " + images);
        }
        return labels;
    }

    private static String required(Properties p, String key, String name) throws IOException {
        String v = p.getProperty(key);
        if (v == null) {
            throw corrupt(name, "the header has no " + key);
        }
        return v;
    }

    private static int positive(Properties p, String key, String name) throws IOException {
        String v = required(p, key, name);
        int n;
        try {
            n = Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            throw corrupt(name, key + " is \"" + v + "\", not an integer");
        }
        if (n < 1) {
            throw corrupt(name, key + " is " + n + "; it must be >= 1");
        }
        return n;
    }

    private static boolean bool(Properties p, String key, String name) throws IOException {
        String v = required(p, key, name).strip();
        if (!v.equals("true") && !v.equals("false")) {
            throw corrupt(name, key + " is \"" + v + "\", not true or false");
        }
        return v.equals("true");
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "recording of %d image(s)%s, %d steps, %s%s", images, guided ? " (guided)" : "", steps,
                metadata, modulatedInputs == null ? ", no modulated inputs" : "");
    }

    /** Reads a recording from bytes (tests). */
    static Recording fromBytes(byte[] bytes) throws IOException {
        return read(new ByteArrayInputStream(bytes), "bytes");
    }
}
