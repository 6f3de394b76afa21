package dev.fora.spark;

import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.ConditioningSpec;
import dev.fora.core.model.DiTConfig;
import dev.fora.djl.GenerationRequest;
import dev.fora.djl.TextEncoder;
import java.math.BigDecimal;
import java.util.List;
import java.util.regex.Pattern;
import org.apache.spark.sql.Row;

/**
 * One row of the {@link RequestTable}, parsed and checked against the model: one image.
 *
 * @param id the request id (a safe file name)
 * @param label the class label, or null for a prompt
 * @param prompt the prompt as written in the table, or null for a class label
 * @param generation the library's request of one image whose noise seed is the row's seed. By the
 *     seed rule ({@link GenerationRequest}) its image equals image {@code k} of any request with
 *     seed {@code seed - k} and this label or prompt at position {@code k}, e.g. of {@code fora
 *     generate --labels} or {@code --prompt}.
 */
record ImageRequest(String id, Integer label, String prompt, GenerationRequest generation) {

    /** Ids name files in one directory: no separators, no hidden or option-like names. */
    private static final Pattern SAFE_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,199}");

    /**
     * Parses a row of {@link RequestTable#read}.
     *
     * @param modelName the model's name, for messages
     * @param encoder the model directory's text encoder, which encodes a row's prompt; null if it has none
     * @throws RequestException saying what is wrong with the row
     */
    static ImageRequest parse(Row row, DiTConfig config, String modelName, TextEncoder encoder) throws RequestException {
        String corrupt = text(row, RequestTable.CORRUPT_RECORD);
        if (corrupt != null) {
            throw new RequestException("malformed record: " + abbreviate(corrupt));
        }
        String id = text(row, RequestTable.ID);
        if (id == null) {
            throw new RequestException("the id is empty");
        }
        if (!SAFE_ID.matcher(id).matches()) {
            throw new RequestException("id \"" + abbreviate(id) + "\" cannot name a file: use letters, digits, '.', '_' and '-'"
                    + " (at most 200, starting with a letter or digit)");
        }
        long occurrences = row.getLong(row.fieldIndex(RequestTable.ID_COUNT));
        if (occurrences > 1) {
            throw new RequestException("id " + id + " appears " + occurrences + " times; ids name the output files and must be"
                    + " unique");
        }
        String embeddings = text(row, RequestTable.EMBEDDINGS);
        if (embeddings != null) {
            throw new RequestException("text embeddings (\"" + abbreviate(embeddings) + "\") are not supported: model "
                    + modelName + " takes " + takes(config, encoder));
        }
        String labelText = text(row, RequestTable.LABEL);
        // The prompt as written (not stripped), as fora generate --prompt would take it; blank is empty.
        String prompt = text(row, RequestTable.PROMPT) == null ? null : row.getString(row.fieldIndex(RequestTable.PROMPT));
        if (prompt != null && labelText != null) {
            throw new RequestException("the row has a label (" + abbreviate(labelText) + ") and a prompt (\"" + abbreviate(prompt)
                    + "\"): give one of them");
        }
        if (prompt == null && labelText == null) {
            throw new RequestException((encoder != null ? "the prompt" : "the label") + " is empty: model " + modelName
                    + " takes " + takes(config, encoder));
        }
        if (prompt != null && encoder == null) { // the job refuses such a table; this guards a direct use
            throw new RequestException("model " + modelName + " has no text encoder to encode the prompt");
        }
        Integer label = prompt == null ? integer(RequestTable.LABEL, labelText) : null;
        try {
            GenerationRequest.Builder b;
            if (prompt == null) {
                config.conditioning().check(ClassLabels.of(label), 1, false);
                b = GenerationRequest.builder(label);
            } else {
                b = GenerationRequest.builder(encoder, List.of(prompt));
            }
            return new ImageRequest(id, label, prompt, b
                    .seed(longInteger(RequestTable.SEED, required(row, RequestTable.SEED)))
                    .policy(orDefault(row, RequestTable.POLICY, RequestTable.DEFAULT_POLICY))
                    .sampler(orDefault(row, RequestTable.SAMPLER, RequestTable.DEFAULT_SAMPLER))
                    .steps(integer(RequestTable.STEPS, orDefault(row, RequestTable.STEPS, RequestTable.DEFAULT_STEPS)))
                    .cfgScale(real(RequestTable.CFG, orDefault(row, RequestTable.CFG, RequestTable.DEFAULT_CFG)))
                    .build());
        } catch (IllegalArgumentException e) {
            throw new RequestException(RequestTable.firstLine(e.getMessage()));
        }
    }

    private static String takes(DiTConfig config, TextEncoder encoder) {
        if (config.conditioning() instanceof ConditioningSpec.Classes c) {
            return "class labels 0.." + (c.count() - 1);
        }
        return encoder != null ? "prompts (the " + RequestTable.PROMPT + " column)"
                : "text embeddings, which this job cannot read; add a text encoder to the model directory for prompts";
    }

    /** The value as text, or null when it is null or blank. */
    private static String text(Row row, String column) {
        Object v = row.get(row.fieldIndex(column));
        if (v == null) {
            return null;
        }
        String s = v.toString().strip();
        return s.isEmpty() ? null : s;
    }

    private static String required(Row row, String column) throws RequestException {
        String v = text(row, column);
        if (v == null) {
            throw new RequestException("the " + column + " is empty");
        }
        return v;
    }

    private static String orDefault(Row row, String column, String fallback) {
        String v = text(row, column);
        return v == null ? fallback : v;
    }

    /** An int: {@link #longInteger} within the range of an int. */
    private static int integer(String column, String text) throws RequestException {
        long v = longInteger(column, text);
        if (v != (int) v) {
            throw new RequestException(column + " " + v + " is out of range");
        }
        return (int) v;
    }

    /** An integer, also when written as a whole decimal ({@code 3.0}, as tables with nulls store ints). */
    private static long longInteger(String column, String text) throws RequestException {
        try {
            return new BigDecimal(text).longValueExact();
        } catch (ArithmeticException | NumberFormatException e) {
            throw new RequestException(column + " \"" + abbreviate(text) + "\" is not an integer");
        }
    }

    private static double real(String column, String text) throws RequestException {
        try {
            return Double.parseDouble(text);
        } catch (NumberFormatException e) {
            throw new RequestException(column + " \"" + abbreviate(text) + "\" is not a number");
        }
    }

    private static String abbreviate(String s) {
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }
}
