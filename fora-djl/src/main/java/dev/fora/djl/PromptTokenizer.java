package dev.fora.djl;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import dev.fora.djl.ModelLoadException.Reason;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns prompts into a text encoder's fixed-length input: a Hugging Face {@code tokenizer.json}
 * (run by DJL's binding of the Rust {@code tokenizers} library, its native code inside the jar)
 * gives each prompt's ids with the end-of-sequence id appended; they are then cut or padded to
 * the encoder's token count. As PixArt-α's pipeline (transformers, {@code truncation=True}), a
 * prompt that does not fit keeps its first {@code tokens - 1} ids and the end-of-sequence id, and
 * a warning names it.
 *
 * <p>Thread-safe; {@link #close()} frees the native tokenizer.
 */
public final class PromptTokenizer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(PromptTokenizer.class);

    private final HuggingFaceTokenizer tokenizer;
    private final Path file;
    private final int tokens;
    private final int vocabularySize;
    private final long padId;
    private final long eosId;

    private PromptTokenizer(HuggingFaceTokenizer tokenizer, Path file, int tokens, int vocabularySize, long padId, long eosId) {
        this.tokenizer = tokenizer;
        this.file = file;
        this.tokens = tokens;
        this.vocabularySize = vocabularySize;
        this.padId = padId;
        this.eosId = eosId;
    }

    /**
     * Loads a {@code tokenizer.json}.
     *
     * @param tokens the encoder's token count (PixArt-α: 120)
     * @param padId the id of padding (T5: 0)
     * @param eosId the id the tokenizer appends (T5: 1); the last id of a cut prompt
     * @throws ModelLoadException {@code MISSING_FILE} if the file does not exist, {@code CORRUPT_FILE}
     *     if it is not a tokenizer.json the library reads
     */
    public static PromptTokenizer load(Path file, int tokens, long padId, long eosId) throws ModelLoadException {
        Objects.requireNonNull(file, "file");
        if (tokens < 2) {
            throw new IllegalArgumentException("a prompt needs at least 2 tokens (a word and the end), got " + tokens);
        }
        if (!Files.isRegularFile(file)) {
            throw new ModelLoadException(Reason.MISSING_FILE, file, "no tokenizer.json here");
        }
        int vocabulary = vocabularySize(file);
        if (padId < 0 || padId >= vocabulary || eosId < 0 || eosId >= vocabulary) {
            throw new ModelLoadException(Reason.BAD_MANIFEST, file, "pad id " + padId + " and eos id " + eosId
                    + " must be ids of the tokenizer's " + vocabulary);
        }
        HuggingFaceTokenizer t;
        try {
            t = HuggingFaceTokenizer.builder().optTokenizerPath(file).optAddSpecialTokens(true).optTruncation(false)
                    .optPadding(false).build();
        } catch (IOException | RuntimeException e) {
            throw new ModelLoadException(Reason.CORRUPT_FILE, file, "not a tokenizer the tokenizers library reads: " + e.getMessage(),
                    e);
        }
        return new PromptTokenizer(t, file, tokens, vocabulary, padId, eosId);
    }

    /** How many ids the tokenizer can produce: its model's vocabulary and its added tokens. */
    static int vocabularySize(Path file) throws ModelLoadException {
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            JsonObject root = JsonParser.parseReader(r).getAsJsonObject();
            JsonObject model = root.getAsJsonObject("model");
            JsonElement vocab = model == null ? null : model.get("vocab");
            if (vocab == null) {
                throw new ModelLoadException(Reason.CORRUPT_FILE, file, "the tokenizer has no model.vocab");
            }
            int n = vocab.isJsonArray() ? vocab.getAsJsonArray().size() : vocab.getAsJsonObject().size();
            JsonElement added = root.get("added_tokens");
            if (added != null && added.isJsonArray()) {
                for (JsonElement a : added.getAsJsonArray()) {
                    n = Math.max(n, a.getAsJsonObject().get("id").getAsInt() + 1);
                }
            }
            return n;
        } catch (IOException | JsonParseException | IllegalStateException | ClassCastException | NullPointerException e) {
            throw new ModelLoadException(Reason.CORRUPT_FILE, file, "not a tokenizer.json: " + e.getMessage(), e);
        }
    }

    /** The file. */
    public Path file() {
        return file;
    }

    /** Tokens per prompt. */
    public int tokens() {
        return tokens;
    }

    /** How many ids the tokenizer can produce (at most the encoder's embedding rows). */
    public int vocabularySize() {
        return vocabularySize;
    }

    /** The ids of one prompt as the tokenizer gives them, end-of-sequence id included, uncut. */
    public long[] ids(String prompt) {
        Objects.requireNonNull(prompt, "prompt");
        Encoding e = tokenizer.encode(prompt);
        return e.getIds();
    }

    /**
     * Tokenizes prompts to {@link #tokens()} ids each, with the mask.
     *
     * @throws IllegalArgumentException if the list is empty or a prompt is null
     */
    public Tokens tokenize(List<String> prompts) {
        Objects.requireNonNull(prompts, "prompts");
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException("no prompts: give at least one (an empty string is a prompt)");
        }
        int n = prompts.size();
        long[] ids = new long[n * tokens];
        long[] mask = new long[n * tokens];
        int[] lengths = new int[n];
        for (int i = 0; i < n; i++) {
            String p = prompts.get(i);
            if (p == null) {
                throw new IllegalArgumentException("prompt " + i + " is null");
            }
            long[] row = ids(p);
            lengths[i] = row.length;
            int keep = Math.min(row.length, tokens);
            if (row.length > tokens) {
                LOG.warn("prompt {} has {} tokens; the text encoder takes {}, so its end is cut off: \"{}\"", i, row.length,
                        tokens, p.length() > 80 ? p.substring(0, 77) + "..." : p);
                row[keep - 1] = eosId;
            }
            for (int t = 0; t < tokens; t++) {
                ids[i * tokens + t] = t < keep ? row[t] : padId;
                mask[i * tokens + t] = t < keep ? 1 : 0;
            }
        }
        return new Tokens(tokens, ids, mask, lengths);
    }

    /** Frees the native tokenizer. Idempotent. */
    @Override
    public void close() {
        tokenizer.close();
    }

    /**
     * Prompts as an encoder's input.
     *
     * @param tokens ids per prompt
     * @param ids {@code [prompts, tokens]} row-major, padded with the pad id
     * @param mask {@code [prompts, tokens]}, 1 for a real token (the end-of-sequence id included), 0 for padding
     * @param lengths each prompt's id count before cutting; more than {@code tokens} means it was cut
     */
    public record Tokens(int tokens, long[] ids, long[] mask, int[] lengths) {

        /** Number of prompts. */
        public int size() {
            return lengths.length;
        }

        /** Row {@code i}'s ids. */
        public long[] ids(int i) {
            return java.util.Arrays.copyOfRange(ids, i * tokens, (i + 1) * tokens);
        }

        /** Row {@code i}'s mask. */
        public long[] mask(int i) {
            return java.util.Arrays.copyOfRange(mask, i * tokens, (i + 1) * tokens);
        }

        /** Whether prompt {@code i} was cut to fit. */
        public boolean truncated(int i) {
            return lengths[i] > tokens;
        }
    }
}
