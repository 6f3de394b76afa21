package dev.fora.djl;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import dev.fora.core.model.BlockLayout;
import dev.fora.core.model.ConditioningSpec;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.sampling.SamplerKind;
import dev.fora.djl.ModelLoadException.Reason;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The {@code manifest.json} of an exported model directory (written by
 * {@code fora_tools.export}): format, architecture, diffusion process and the files with
 * their sizes and SHA-256 digests.
 *
 * <p>Sizes are bounded by the {@code MAX_} constants, far above any DiT's, so that no manifest
 * can make the loader allocate without limit or overflow an {@code int}.
 *
 * @param name model name
 * @param family the model family ({@code architecture.family}, default {@code dit})
 * @param formatVersion the manifest format version: {@value #FORMAT_VERSION} exports the fused step
 *     methods ({@link #hasFusedSteps()}); {@value #OLDEST_FORMAT_VERSION} only the stages
 * @param config the model's shape (sizes, MLP ratio; DiT: its block layout and class conditioning; PixArt-α:
 *     {@link BlockLayout#CROSS_ATTENTION} and text conditioning of {@code model_max_length x caption_channels})
 * @param diffusion the diffusion process the model was trained with
 * @param files the files by role ({@code "dit"}, optionally {@code "classifier"} and {@code "decoder"})
 * @param classes class names, index = label (empty if the manifest has none)
 * @param guidance how classifier-free guidance mixes the output channels (section {@code guidance},
 *     optional: all channels)
 * @param clipDenoised whether samplers may clip predicted x0 to [-1, 1] ({@code diffusion.clip_denoised},
 *     optional: true; latent models say false, as DiT's and PixArt-α's samplers do not clip latents)
 * @param decoder the latent decoder (role {@code decoder} with section {@code decoder}), or null: the
 *     model's samples are the pixels
 */
public record ModelManifest(String name, ModelFamily family, int formatVersion, DiTConfig config, Diffusion diffusion,
        Map<String, FileEntry> files, List<String> classes, Guidance guidance, boolean clipDenoised, DecoderSpec decoder) {

    /**
     * Whether the model exports the fused step methods {@code forward_features} and {@code forward_cached}
     * in the form this library calls: the family says from which format on
     * ({@link ModelFamily#hasFusedSteps(int)}).
     */
    public boolean hasFusedSteps() {
        return family.hasFusedSteps(formatVersion);
    }

    /** The {@code format} value of a FORA4J model manifest. */
    public static final String FORMAT = "fora4j-dit";
    /** The manifest format version this library reads. */
    public static final int FORMAT_VERSION = 3;
    /** The oldest manifest format version this library still reads (its model runs the staged path only). */
    public static final int OLDEST_FORMAT_VERSION = 1;
    /** The file name of the manifest inside a model directory. */
    public static final String FILE_NAME = "manifest.json";
    /** Role of the DiT TorchScript file. */
    public static final String DIT = "dit";
    /** Role of the optional bfloat16 variant of the DiT ({@code fora_tools.export --bf16}). */
    public static final String DIT_BF16 = "dit_bf16";
    /** Role of the optional int8 variant of the DiT ({@code fora_tools.export --int8}). */
    public static final String DIT_INT8 = "dit_int8";
    /** Role of the optional classifier TorchScript file. */
    public static final String CLASSIFIER = "classifier";
    /** Role of the optional latent decoder TorchScript file. */
    public static final String DECODER = "decoder";

    /** Largest manifest file read (the shipped one is about 2 KB). */
    public static final int MAX_MANIFEST_BYTES = 4 << 20;
    /** Largest {@code diffusion.train_steps} (DiT trains with 1000); the schedule holds arrays of this length. */
    public static final int MAX_TRAIN_STEPS = 100_000;
    /** Largest {@code input_size}, hence {@code patch_size} (DiT-XL/2 at 512 px has latents of side 64). */
    public static final int MAX_INPUT_SIZE = 512;
    /** Largest {@code in_channels} (DiT latents have 4). */
    public static final int MAX_CHANNELS = 64;
    /** Largest {@code hidden_size}, hence {@code num_heads} (DiT-XL has 1152). */
    public static final int MAX_HIDDEN_SIZE = 16_384;
    /** Largest {@code depth} (DiT-XL has 28). */
    public static final int MAX_DEPTH = 1_024;
    /** Largest {@code num_classes} (ImageNet has 1000, ImageNet-21k 21,841). */
    public static final int MAX_CLASSES = 100_000;
    /** Largest {@code caption_channels} (T5-XXL gives 4096). */
    public static final int MAX_CAPTION_CHANNELS = 65_536;
    /** Largest {@code model_max_length}, the caption tokens (PixArt-α takes 120). */
    public static final int MAX_CAPTION_TOKENS = 4_096;
    /** Largest decoder {@code upsampling} (Stable Diffusion's VAE: 8). */
    public static final int MAX_UPSAMPLING = 64;

    /**
     * The diffusion process of the manifest.
     *
     * @param trainSteps number of training timesteps (1000 for DiT)
     * @param betaSchedule beta schedule name; only {@code "linear"} is supported
     * @param betaStart first beta, given for a 1000-step process as in DiT (the pipeline builds
     *     {@code DiffusionSchedule.linear(trainSteps, betaStart, betaEnd)}, which scales both
     *     ends by {@code 1000 / trainSteps})
     * @param betaEnd last beta, likewise
     * @param learnSigma whether the model predicts the variance interpolation value
     * @param nullClass the label of the unconditional (CFG) class
     * @param valueMin lower end of the data range
     * @param valueMax upper end of the data range
     */
    public record Diffusion(int trainSteps, String betaSchedule, double betaStart, double betaEnd, boolean learnSigma,
            int nullClass, double valueMin, double valueMax) {
    }

    /**
     * How classifier-free guidance mixes the model's output: the leading {@code guidedChannels}
     * eps channels get {@code eps_u + s (eps_c - eps_u)}, the others come from the conditional
     * half. DiT's {@code forward_with_cfg} guides 3 of its 4 latent channels; PixArt-α's DPM-Solver
     * path guides all 4, so a sampler may have its own count.
     *
     * @param guidedChannels the count for every sampler without its own
     * @param bySampler per sampler id ({@code ddim}, {@code ddpm}, {@code dpm-solver++}), the count
     */
    public record Guidance(int guidedChannels, Map<String, Integer> bySampler) {

        /** Copies the map. */
        public Guidance {
            bySampler = Collections.unmodifiableMap(new LinkedHashMap<>(bySampler));
        }

        /** Guidance of all {@code channels}. */
        public static Guidance all(int channels) {
            return new Guidance(channels, Map.of());
        }

        /** The count for a sampler. */
        public int channelsFor(SamplerKind sampler) {
            return bySampler.getOrDefault(sampler.id(), guidedChannels);
        }
    }

    /**
     * The latent decoder of a model directory: the decoding half of an {@code AutoencoderKL}
     * ({@code decoder(post_quant_conv(z / scaleFactor))}, the division done inside the module).
     *
     * @param type {@code autoencoder-kl}
     * @param latentChannels channels of the latents it takes (must equal the model's {@code in_channels})
     * @param outChannels image channels it makes
     * @param scaleFactor the latent scale factor (Stable Diffusion's VAE: 0.18215)
     * @param upsampling image side / latent side (Stable Diffusion's VAE: 8)
     */
    public record DecoderSpec(String type, int latentChannels, int outChannels, double scaleFactor, int upsampling) {
    }

    /**
     * One file of the model directory.
     *
     * @param path path relative to the directory
     * @param sha256 lower-case hex SHA-256 of the content
     * @param bytes size in bytes
     */
    public record FileEntry(String path, String sha256, long bytes) {
    }

    /** Copies the collections. */
    public ModelManifest {
        files = Collections.unmodifiableMap(new LinkedHashMap<>(files));
        classes = List.copyOf(classes);
    }

    /** The file entry of a role, if the manifest lists one. */
    public Optional<FileEntry> file(String role) {
        return Optional.ofNullable(files.get(role));
    }

    /** Whether the model directory has a latent decoder. */
    public boolean hasDecoder() {
        return decoder != null;
    }

    /** Whether the model is conditioned on text embeddings (PixArt-α) rather than class labels. */
    public boolean textConditioned() {
        return config.conditioning() instanceof ConditioningSpec.Text;
    }

    /** Whether the model directory ships a classifier. */
    public boolean hasClassifier() {
        return files.containsKey(CLASSIFIER);
    }

    /**
     * Reads and validates a manifest file (format, version, types, bounds, consistent sizes). File
     * digests are checked by {@link ModelDirectory#open(Path)}, not here.
     *
     * @throws ModelLoadException naming the manifest file and the problem
     */
    public static ModelManifest read(Path manifestFile) throws ModelLoadException {
        String text;
        try {
            long size = Files.size(manifestFile);
            if (size > MAX_MANIFEST_BYTES) {
                throw new ModelLoadException(Reason.BAD_MANIFEST, manifestFile, "the manifest is " + size
                        + " bytes, more than the " + MAX_MANIFEST_BYTES + " a manifest may have");
            }
            text = Files.readString(manifestFile, StandardCharsets.UTF_8);
        } catch (ModelLoadException e) {
            throw e; // is an IOException too: keep its reason
        } catch (NoSuchFileException e) {
            throw new ModelLoadException(Reason.MISSING_FILE, manifestFile, "no manifest (expected " + FILE_NAME
                    + " written by fora_tools.export)", e);
        } catch (CharacterCodingException e) {
            throw new ModelLoadException(Reason.BAD_MANIFEST, manifestFile, "the manifest is not UTF-8 text", e);
        } catch (IOException e) {
            throw new ModelLoadException(Reason.MISSING_FILE, manifestFile, ModelLoadException.unreadable(e), e);
        }
        if (text.isBlank()) {
            throw new ModelLoadException(Reason.BAD_MANIFEST, manifestFile, "the manifest is empty; expected the JSON "
                    + "object written by fora_tools.export");
        }
        JsonElement json;
        try {
            json = JsonParser.parseString(text);
        } catch (JsonParseException e) {
            Throwable why = e.getCause() != null ? e.getCause() : e;
            // Gson adds a second line pointing at its troubleshooting guide
            throw new ModelLoadException(Reason.BAD_MANIFEST, manifestFile, "not valid JSON: "
                    + String.valueOf(why.getMessage()).lines().findFirst().orElse(""), e);
        }
        if (!json.isJsonObject()) {
            String kind = json.isJsonNull() ? "null" : json.isJsonArray() ? "an array" : "a single value";
            throw new ModelLoadException(Reason.BAD_MANIFEST, manifestFile, "the manifest is not a JSON object but "
                    + kind);
        }
        return parse(json.getAsJsonObject(), manifestFile);
    }

    /** Validates a parsed manifest; {@code source} names the file in errors. */
    static ModelManifest parse(JsonObject root, Path source) throws ModelLoadException {
        Fields f = new Fields(source);
        String format = f.string(root, "format");
        if (!FORMAT.equals(format)) {
            throw new ModelLoadException(Reason.UNSUPPORTED_VERSION, source, "format is \"" + format + "\", expected \""
                    + FORMAT + "\"");
        }
        int version = f.integer(root, "format_version");
        if (version < OLDEST_FORMAT_VERSION || version > FORMAT_VERSION) {
            throw new ModelLoadException(Reason.UNSUPPORTED_VERSION, source, "format_version " + version
                    + " is not supported; this library reads versions " + OLDEST_FORMAT_VERSION + " to " + FORMAT_VERSION);
        }
        String name = root.has("name") ? f.string(root, "name") : source.getParent().getFileName().toString();

        JsonObject arch = f.object(root, "architecture");
        ModelFamily family;
        try {
            family = ModelFamily.forId(arch.has("family") ? f.string(arch, "family") : ModelFamily.DIT.id());
        } catch (IllegalArgumentException e) {
            throw new ModelLoadException(Reason.UNSUPPORTED_VERSION, source, e.getMessage(), e);
        }
        int inputSize = f.positive(arch, "input_size", MAX_INPUT_SIZE);
        int inChannels = f.positive(arch, "in_channels", MAX_CHANNELS);
        int patch = f.positive(arch, "patch_size", MAX_INPUT_SIZE);
        int hidden = f.positive(arch, "hidden_size", MAX_HIDDEN_SIZE);
        int depth = f.positive(arch, "depth", MAX_DEPTH);
        int heads = f.positive(arch, "num_heads", MAX_HIDDEN_SIZE);
        double mlpRatio = f.number(arch, "mlp_ratio");
        ConditioningSpec conditioning = family.conditioning(arch, f);
        int numClasses = conditioning instanceof ConditioningSpec.Classes c ? c.count() : 0;
        boolean learnSigma = f.bool(arch, "learn_sigma");
        if (inputSize % patch != 0) {
            throw shape(source, "patch_size " + patch + " does not divide input_size " + inputSize);
        }
        if (hidden % heads != 0) {
            throw shape(source, "num_heads " + heads + " does not divide hidden_size " + hidden);
        }
        if (!(mlpRatio > 0)) {
            throw new ModelLoadException(Reason.BAD_MANIFEST, source, "architecture.mlp_ratio must be > 0, got " + mlpRatio);
        }
        DiTConfig config = new DiTConfig(inputSize, inChannels, patch, hidden, depth, heads, mlpRatio, learnSigma,
                family.layout(), conditioning);
        boolean classes = conditioning instanceof ConditioningSpec.Classes;
        if (arch.has("out_channels") && f.integer(arch, "out_channels") != config.outChannels()) {
            throw shape(source, "architecture.out_channels is " + f.integer(arch, "out_channels") + " but in_channels "
                    + inChannels + " with learn_sigma " + learnSigma + " gives " + config.outChannels());
        }
        if (arch.has("tokens") && f.integer(arch, "tokens") != config.tokens()) {
            throw shape(source, "architecture.tokens is " + f.integer(arch, "tokens") + " but (input_size / patch_size)^2 = "
                    + config.tokens());
        }

        JsonObject diff = f.object(root, "diffusion");
        String schedule = f.string(diff, "beta_schedule");
        if (!"linear".equals(schedule)) {
            throw new ModelLoadException(Reason.BAD_MANIFEST, source, "diffusion.beta_schedule \"" + schedule
                    + "\" is not supported (only \"linear\")");
        }
        double lo = -1.0;
        double hi = 1.0;
        if (diff.has("value_range")) {
            JsonArray range = f.array(diff, "value_range");
            if (range.size() != 2) {
                throw new ModelLoadException(Reason.BAD_MANIFEST, source, "diffusion.value_range must have 2 numbers");
            }
            lo = f.number(range.get(0), "value_range");
            hi = f.number(range.get(1), "value_range");
            if (!(lo < hi)) {
                throw new ModelLoadException(Reason.BAD_MANIFEST, source, "diffusion.value_range must be [low, high] with "
                        + "low < high, got " + range);
            }
        }
        Diffusion diffusion = new Diffusion(f.positive(diff, "train_steps", MAX_TRAIN_STEPS), schedule,
                f.number(diff, "beta_start"), f.number(diff, "beta_end"), f.bool(diff, "learn_sigma"),
                classes ? f.integer(diff, "null_class") : -1, lo, hi);
        if (diffusion.learnSigma() != learnSigma) {
            throw shape(source, "diffusion.learn_sigma " + diffusion.learnSigma() + " disagrees with architecture.learn_sigma "
                    + learnSigma);
        }
        if (classes && diffusion.nullClass() != numClasses) {
            throw shape(source, "diffusion.null_class is " + diffusion.nullClass() + " but the null class of a DiT with "
                    + numClasses + " classes is " + numClasses);
        }

        JsonObject filesJson = f.object(root, "files");
        Map<String, FileEntry> files = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : filesJson.entrySet()) {
            if (!e.getValue().isJsonObject()) {
                throw new ModelLoadException(Reason.BAD_MANIFEST, source, "files." + e.getKey() + " must be an object");
            }
            JsonObject fe = e.getValue().getAsJsonObject();
            String path = f.string(fe, "path");
            String sha = f.string(fe, "sha256").toLowerCase(java.util.Locale.ROOT);
            if (!sha.matches("[0-9a-f]{64}")) {
                throw new ModelLoadException(Reason.BAD_MANIFEST, source, "files." + e.getKey() + ".sha256 is not 64 hex digits");
            }
            if (!isRelative(path) || path.contains("..")) {
                throw new ModelLoadException(Reason.BAD_MANIFEST, source, "files." + e.getKey() + ".path must be relative to "
                        + "the model directory, got " + path);
            }
            long bytes = f.longValue(fe, "bytes");
            files.put(e.getKey(), new FileEntry(path, sha, bytes));
        }
        if (!files.containsKey(DIT)) {
            throw new ModelLoadException(Reason.BAD_MANIFEST, source, "files has no \"dit\" entry");
        }
        List<String> classNames = new ArrayList<>();
        if (classes && root.has("classes")) {
            for (JsonElement c : f.array(root, "classes")) {
                classNames.add(f.string(c, "classes"));
            }
            if (classNames.size() != numClasses) {
                throw shape(source, "classes lists " + classNames.size() + " names but num_classes is " + numClasses);
            }
        }
        boolean clip = !diff.has("clip_denoised") || f.bool(diff, "clip_denoised");
        Guidance guidance = guidance(root, f, source, inChannels);
        DecoderSpec decoder = decoder(root, f, source, files, inChannels);
        return new ModelManifest(name, family, version, config, diffusion, files, classNames, guidance, clip, decoder);
    }

    /** The optional {@code guidance} section: counts from 1 to the latent channels. */
    private static Guidance guidance(JsonObject root, Fields f, Path source, int channels) throws ModelLoadException {
        if (!root.has("guidance")) {
            return Guidance.all(channels);
        }
        JsonObject g = f.object(root, "guidance");
        int all = g.has("guided_channels") ? f.positive(g, "guided_channels", MAX_CHANNELS) : channels;
        if (all > channels) {
            throw shape(source, "guidance.guided_channels is " + all + " but the latent has " + channels + " channels");
        }
        Map<String, Integer> by = new LinkedHashMap<>();
        if (g.has("guided_channels_by_sampler")) {
            for (Map.Entry<String, JsonElement> e : f.object(g, "guided_channels_by_sampler").entrySet()) {
                try {
                    SamplerKind.parse(e.getKey());
                } catch (IllegalArgumentException ex) {
                    throw new ModelLoadException(Reason.BAD_MANIFEST, source, "guidance.guided_channels_by_sampler: "
                            + ex.getMessage());
                }
                int n = f.positive(f.object(g, "guided_channels_by_sampler"), e.getKey(), MAX_CHANNELS);
                if (n > channels) {
                    throw shape(source, "guidance.guided_channels_by_sampler." + e.getKey() + " is " + n
                            + " but the latent has " + channels + " channels");
                }
                by.put(SamplerKind.parse(e.getKey()).id(), n);
            }
        }
        return new Guidance(all, by);
    }

    /** The {@code decoder} section, required exactly when {@code files} has a decoder. */
    private static DecoderSpec decoder(JsonObject root, Fields f, Path source, Map<String, FileEntry> files, int channels)
            throws ModelLoadException {
        boolean file = files.containsKey(DECODER);
        if (!file && !root.has(DECODER)) {
            return null;
        }
        if (!file) {
            throw new ModelLoadException(Reason.BAD_MANIFEST, source, "the manifest has a decoder section but files has no "
                    + "\"decoder\" entry");
        }
        if (!root.has(DECODER)) {
            throw new ModelLoadException(Reason.BAD_MANIFEST, source, "files has a \"decoder\" entry but the manifest has no "
                    + "decoder section (latent channels, scale factor, upsampling)");
        }
        JsonObject d = f.object(root, DECODER);
        String type = f.string(d, "type");
        if (!"autoencoder-kl".equals(type)) {
            throw new ModelLoadException(Reason.UNSUPPORTED_VERSION, source, "decoder.type \"" + type
                    + "\" is not supported (\"autoencoder-kl\")");
        }
        int latent = f.positive(d, "latent_channels", MAX_CHANNELS);
        if (latent != channels) {
            throw shape(source, "the decoder takes " + latent + "-channel latents but the model makes " + channels
                    + " channels (architecture.in_channels)");
        }
        double scale = f.number(d, "scale_factor");
        if (!(scale > 0)) {
            throw new ModelLoadException(Reason.BAD_MANIFEST, source, "decoder.scale_factor must be > 0, got " + scale);
        }
        int up = f.positive(d, "upsampling", MAX_UPSAMPLING);
        return new DecoderSpec(type, latent, f.positive(d, "out_channels", MAX_CHANNELS), scale, up);
    }

    private static boolean isRelative(String path) {
        try {
            return !Path.of(path).isAbsolute();
        } catch (InvalidPathException e) {
            return false;
        }
    }

    private static ModelLoadException shape(Path source, String detail) {
        return new ModelLoadException(Reason.SHAPE_MISMATCH, source, detail);
    }

    /** Typed field access that reports the missing or mistyped field (the families read their own fields). */
    record Fields(Path source) {

        private JsonElement get(JsonObject o, String key) throws ModelLoadException {
            JsonElement e = o.get(key);
            if (e == null || e.isJsonNull()) {
                throw new ModelLoadException(Reason.BAD_MANIFEST, source, "missing field \"" + key + "\"");
            }
            return e;
        }

        private ModelLoadException wrongType(String key, String type, JsonElement e) {
            return new ModelLoadException(Reason.BAD_MANIFEST, source, "field \"" + key + "\" must be " + type + ", got " + e);
        }

        String string(JsonObject o, String key) throws ModelLoadException {
            return string(get(o, key), key);
        }

        /** {@code e} as a string; {@code key} names it in the error. */
        String string(JsonElement e, String key) throws ModelLoadException {
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
                throw wrongType(key, "a string", e);
            }
            return e.getAsString();
        }

        double number(JsonObject o, String key) throws ModelLoadException {
            return number(get(o, key), key);
        }

        /** {@code e} as a finite number (one beyond the double range, such as 1e999, reads as infinity). */
        double number(JsonElement e, String key) throws ModelLoadException {
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber() || !Double.isFinite(e.getAsDouble())) {
                throw wrongType(key, "a finite number", e);
            }
            return e.getAsDouble();
        }

        long longValue(JsonObject o, String key) throws ModelLoadException {
            double d = number(o, key);
            if (d != Math.rint(d) || d < 0 || d >= 0x1p63) {
                throw wrongType(key, "a non-negative integer below 2^63", get(o, key));
            }
            return (long) d;
        }

        int integer(JsonObject o, String key) throws ModelLoadException {
            double d = number(o, key);
            if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) {
                throw wrongType(key, "an integer", get(o, key));
            }
            return (int) d;
        }

        int positive(JsonObject o, String key, int max) throws ModelLoadException {
            double d = number(o, key);
            if (d != Math.rint(d) || d < 1 || d > max) {
                throw wrongType(key, "an integer from 1 to " + max, get(o, key));
            }
            return (int) d;
        }

        boolean bool(JsonObject o, String key) throws ModelLoadException {
            JsonElement e = get(o, key);
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isBoolean()) {
                throw wrongType(key, "true or false", e);
            }
            return e.getAsBoolean();
        }

        JsonObject object(JsonObject o, String key) throws ModelLoadException {
            JsonElement e = get(o, key);
            if (!e.isJsonObject()) {
                throw wrongType(key, "an object", e);
            }
            return e.getAsJsonObject();
        }

        JsonArray array(JsonObject o, String key) throws ModelLoadException {
            JsonElement e = get(o, key);
            if (!e.isJsonArray()) {
                throw wrongType(key, "an array", e);
            }
            return e.getAsJsonArray();
        }
    }
}
