package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.Device;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.core.model.ConditioningSpec;
import dev.fora.core.model.TextEmbeddings;
import dev.fora.djl.ModelLoadException.Reason;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * The text-encoder stage of a text-conditioned model directory (PixArt-α): prompts in, the
 * DiT's caption embeddings ({@link TextEmbeddings}) out, with no Python at run time. It runs the
 * directory's {@code tokenizer.json} ({@link PromptTokenizer}) and {@code text_encoder.pt} (a
 * T5 v1.1 encoder exported by {@code fora_tools.export_t5}: {@code forward(ids, mask)} gives
 * T5EncoderModel's {@code last_hidden_state}); the manifest's {@code text_encoder} section gives
 * the token count, width and vocabulary.
 *
 * <p>Each prompt is encoded by its own call, so a prompt's embeddings do not depend on the other
 * prompts of the list, and each call's native memory is freed before {@link #encode} returns.
 * The encoder is separate from {@link DiTPipeline}: a caller may close it (T5-XXL holds 9.5 GB in
 * bfloat16) before sampling. Thread-safe; {@link #close()} waits for calls in flight.
 *
 * <pre>{@code
 * try (TextEncoder t5 = TextEncoder.load(dir); DiTPipeline pipe = DiTPipeline.load(dir)) {
 *     GeneratedImages out = pipe.generate(GenerationRequest.builder(t5, List.of("a red square")).build());
 * }
 * }</pre>
 */
public final class TextEncoder implements AutoCloseable {

    /** Manifest file role of the TorchScript encoder. */
    public static final String FILE_ROLE = "text_encoder";
    /** Manifest file role of the tokenizer.json. */
    public static final String TOKENIZER_ROLE = "tokenizer";
    /** The embedding table of a T5 state dict, {@code [vocab, width]}. */
    private static final String EMBEDDING = "shared.weight";

    private final NDManager manager;
    private final TorchScriptModule module;
    private final PromptTokenizer tokenizer;
    private final Spec spec;
    private final CloseGuard uses;

    private TextEncoder(NDManager manager, TorchScriptModule module, PromptTokenizer tokenizer, Spec spec, CloseGuard uses) {
        this.manager = manager;
        this.module = module;
        this.tokenizer = tokenizer;
        this.spec = spec;
        this.uses = uses;
    }

    /**
     * What the manifest's {@code text_encoder} section says.
     *
     * @param tokens tokens per prompt (the DiT's {@code model_max_length})
     * @param width values per token (the DiT's {@code caption_channels})
     * @param vocabularySize the encoder's embedding rows (T5: 32,128)
     * @param padId the padding id (T5: 0)
     * @param eosId the end-of-sequence id (T5: 1)
     */
    public record Spec(int tokens, int width, int vocabularySize, long padId, long eosId) {
    }

    /** Opens, verifies and loads the text encoder of a model directory. */
    public static TextEncoder load(Path dir) throws ModelLoadException {
        return load(ModelDirectory.open(dir));
    }

    /**
     * Loads the text encoder of a verified model directory and checks it against the model: its
     * token count and width are the DiT's caption shape, the tokenizer's ids are rows of the
     * encoder's embedding table, and a trial encode gives {@code [1, tokens, width]}.
     *
     * @throws ModelLoadException {@code MISSING_FILE} if the directory has no text encoder or
     *     tokenizer, {@code BAD_MANIFEST} if the model is not text-conditioned or the section is
     *     incomplete, {@code SHAPE_MISMATCH} if the tokenizer's vocabulary, the encoder and the model
     *     do not fit together, {@code CORRUPT_FILE} if a file does not load
     */
    public static TextEncoder load(ModelDirectory dir) throws ModelLoadException {
        Objects.requireNonNull(dir, "dir");
        Path manifestFile = dir.root().resolve(ModelManifest.FILE_NAME);
        if (!(dir.manifest().config().conditioning() instanceof ConditioningSpec.Text text)) {
            throw new ModelLoadException(Reason.BAD_MANIFEST, manifestFile, dir.manifest().name()
                    + " is conditioned on class labels: it has no prompts to encode");
        }
        if (dir.manifest().file(FILE_ROLE).isEmpty() || dir.manifest().file(TOKENIZER_ROLE).isEmpty()) {
            throw new ModelLoadException(Reason.MISSING_FILE, manifestFile, "the model directory has no text encoder (the "
                    + "manifest lists no " + (dir.manifest().file(FILE_ROLE).isEmpty() ? FILE_ROLE : TOKENIZER_ROLE)
                    + " file): add T5 and its tokenizer with python3 -m fora_tools.export_t5 (docs/prompts.md), or give "
                    + "the prompts' embeddings instead (--text-embeddings)");
        }
        Spec spec = readSpec(manifestFile);
        if (spec.tokens() != text.tokens() || spec.width() != text.width()) {
            throw new ModelLoadException(Reason.SHAPE_MISMATCH, manifestFile, "the text encoder gives " + spec.tokens()
                    + " tokens x " + spec.width() + " but the model takes captions of " + text.tokens() + " x " + text.width());
        }
        Path tokFile = dir.file(TOKENIZER_ROLE);
        int tokVocab = PromptTokenizer.vocabularySize(tokFile);
        if (tokVocab > spec.vocabularySize()) {
            throw new ModelLoadException(Reason.SHAPE_MISMATCH, tokFile, "the tokenizer does not match the text encoder: it "
                    + "makes ids up to " + (tokVocab - 1) + " but the encoder embeds only " + spec.vocabularySize()
                    + " ids (text_encoder.vocab_size)");
        }
        NDManager manager = NDManager.newBaseManager(Device.cpu(), "PyTorch");
        manager.setName("fora-text-encoder:" + dir.manifest().name());
        PromptTokenizer tokenizer = null;
        try {
            TorchScriptModule module = TorchScriptModule.load(manager, dir.file(FILE_ROLE), List.of("forward"), true);
            long[] table = module.parameterShape(EMBEDDING).orElse(null);
            if (table != null && (table[0] != spec.vocabularySize() || table[1] != spec.width())) {
                throw new ModelLoadException(Reason.SHAPE_MISMATCH, module.file(), EMBEDDING + " is " + Arrays.toString(table)
                        + " but the manifest says " + spec.vocabularySize() + " ids x " + spec.width());
            }
            tokenizer = PromptTokenizer.load(tokFile, spec.tokens(), spec.padId(), spec.eosId());
            TextEncoder encoder = new TextEncoder(manager, module, tokenizer, spec,
                    new CloseGuard("the text encoder of " + dir.root()));
            try {
                TextEmbeddings trial = encoder.encode(List.of(""));
                if (trial.tokens() != spec.tokens() || trial.width() != spec.width()) {
                    throw new IllegalStateException("it gives " + trial);
                }
            } catch (ai.djl.engine.EngineException | IllegalStateException | IllegalArgumentException e) {
                throw new ModelLoadException(Reason.SHAPE_MISMATCH, module.file(), "the text encoder does not give ["
                        + spec.tokens() + ", " + spec.width() + "] per prompt: " + e.getMessage(), e);
            }
            return encoder;
        } catch (ModelLoadException | RuntimeException e) {
            if (tokenizer != null) {
                tokenizer.close();
            }
            manager.close();
            throw e;
        }
    }

    private static Spec readSpec(Path manifestFile) throws ModelLoadException {
        try (Reader r = Files.newBufferedReader(manifestFile, StandardCharsets.UTF_8)) {
            JsonObject s = JsonParser.parseReader(r).getAsJsonObject().getAsJsonObject(FILE_ROLE);
            if (s == null) {
                throw new ModelLoadException(Reason.BAD_MANIFEST, manifestFile, "the manifest lists a text encoder but has no "
                        + "text_encoder section (tokens, width, vocab_size, pad_id, eos_id)");
            }
            return new Spec(s.get("tokens").getAsInt(), s.get("width").getAsInt(), s.get("vocab_size").getAsInt(),
                    s.get("pad_id").getAsLong(), s.get("eos_id").getAsLong());
        } catch (IOException | RuntimeException e) {
            throw new ModelLoadException(Reason.BAD_MANIFEST, manifestFile, "cannot read the text_encoder section (tokens, "
                    + "width, vocab_size, pad_id, eos_id): " + e, e);
        }
    }

    /** The manifest's description. */
    public Spec spec() {
        return spec;
    }

    /** The tokenizer. */
    public PromptTokenizer tokenizer() {
        return tokenizer;
    }

    /**
     * Encodes prompts: one row per prompt of {@link Spec#tokens()} embeddings and the mask (a
     * prompt too long is cut, with a warning). An empty string is a prompt (only the
     * end-of-sequence token is real).
     *
     * @throws IllegalArgumentException if the list is empty or holds null
     * @throws IllegalStateException if the encoder is closed
     */
    public TextEmbeddings encode(List<String> prompts) {
        return encode(tokenizer.tokenize(prompts));
    }

    /** Encodes prompts tokenized by {@link #tokenizer()}. */
    public TextEmbeddings encode(PromptTokenizer.Tokens tokens) {
        int n = tokens.size();
        int l = spec.tokens();
        int w = spec.width();
        float[] values = new float[n * l * w];
        boolean[] mask = new boolean[n * l];
        uses.enter();
        try {
            for (int i = 0; i < n; i++) {
                try (NDManager m = module.newScope()) {
                    NDArray ids = m.create(tokens.ids(i), new Shape(1, l));
                    NDArray msk = m.create(tokens.mask(i), new Shape(1, l));
                    float[] row = module.call("forward", m, ids, msk)[0].toFloatArray();
                    if (row.length != l * w) {
                        throw new IllegalStateException("the text encoder returned " + row.length + " values for a prompt, "
                                + "expected " + l + " x " + w);
                    }
                    System.arraycopy(row, 0, values, i * l * w, l * w);
                }
                long[] mr = tokens.mask(i);
                for (int t = 0; t < l; t++) {
                    mask[i * l + t] = mr[t] != 0;
                }
            }
        } finally {
            uses.exit();
        }
        return new TextEmbeddings(l, w, values, mask);
    }

    /** The encoder's native manager (tests count the arrays left under it). */
    NDManager manager() {
        return manager;
    }

    /** Frees the encoder and the tokenizer, after the calls in flight. Idempotent. */
    @Override
    public void close() {
        if (uses.close(() -> { })) {
            tokenizer.close();
            manager.close();
        }
    }
}
