package dev.fora.spark;

import static org.apache.spark.sql.functions.abs;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.concat;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.when;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.expressions.Window;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;

/**
 * The table of requests, one image per row, read with Spark's CSV (with a header line), JSON
 * (one object per line) or Parquet reader.
 *
 * <p>Columns (names case-insensitive): {@value #ID} (required; names the output file),
 * {@value #LABEL} (class label, for a class-conditioned model), {@value #PROMPT} (the text of a
 * prompt, for a text model whose directory has a text encoder; a row gives a label or a prompt),
 * {@value #EMBEDDINGS} (reserved for a reference to text embeddings; rejected per row), {@value #SEED}
 * (required), {@value #POLICY} (default {@value #DEFAULT_POLICY}), {@value #SAMPLER} (default
 * {@value #DEFAULT_SAMPLER}), {@value #STEPS} (default {@value #DEFAULT_STEPS}) and {@value #CFG}
 * (default {@value #DEFAULT_CFG}): the defaults of {@code fora generate}. An optional column may be
 * left out, or a value left empty. Every value is read as text (JSON numbers as written, so a
 * seed stays an exact 64-bit integer) and parsed per row, so a bad value fails its row, not the
 * job; an unknown column fails the job, since a misspelt optional column would otherwise be
 * silently replaced by its default.
 */
public final class RequestTable {

    /** Request id: letters, digits, '.', '_', '-'; the image is {@code <id>.png}. */
    public static final String ID = "id";
    /** Class label. */
    public static final String LABEL = "label";
    /** Prompt text, encoded by the model directory's text encoder. */
    public static final String PROMPT = "prompt";
    /** Reserved: a reference to text embeddings. */
    public static final String EMBEDDINGS = "embeddings";
    /** Noise seed of the image. */
    public static final String SEED = "seed";
    /** Cache policy spec. */
    public static final String POLICY = "policy";
    /** Sampler name. */
    public static final String SAMPLER = "sampler";
    /** Sampler steps. */
    public static final String STEPS = "steps";
    /** Classifier-free guidance scale. */
    public static final String CFG = "cfg";

    static final String DEFAULT_POLICY = "fora:3";
    static final String DEFAULT_SAMPLER = "ddim";
    static final String DEFAULT_STEPS = "50";
    static final String DEFAULT_CFG = "1.5";

    /** Every column, in the order of the rows {@link #read} returns. */
    static final List<String> COLUMNS = List.of(ID, LABEL, PROMPT, EMBEDDINGS, SEED, POLICY, SAMPLER, STEPS, CFG);
    /** 2^53: a double holds every integer below it exactly, and not every one from it on. */
    private static final double EXACT_DOUBLE_INTEGERS = 0x1p53;
    /** Spark's column for a JSON line it could not parse (PERMISSIVE mode). */
    static final String CORRUPT_RECORD = "_corrupt_record";
    /** How many rows of the table have this row's id (added by {@link #read}). */
    static final String ID_COUNT = "_id_count";

    /** A file format Spark reads. */
    public enum Format {
        /** Comma-separated values with a header line. */
        CSV,
        /** JSON Lines: one object per line. */
        JSON,
        /** Apache Parquet. */
        PARQUET;

        /** The format of a file by its extension ({@code .csv}, {@code .json}/{@code .jsonl}, {@code .parquet}). */
        public static Format of(String file) {
            String name = file.toLowerCase(Locale.ROOT).replaceAll("/+$", "");
            if (name.endsWith(".csv")) {
                return CSV;
            }
            if (name.endsWith(".json") || name.endsWith(".jsonl")) {
                return JSON;
            }
            if (name.endsWith(".parquet")) {
                return PARQUET;
            }
            throw new RequestTableException("cannot tell the format of " + file
                    + " from its name (.csv, .json, .jsonl or .parquet); give --format csv|json|parquet");
        }
    }

    /**
     * The requests as read.
     *
     * @param rows the columns of {@link #COLUMNS} as strings (missing optional columns as nulls),
     *     then {@value #CORRUPT_RECORD} (null unless the reader could not parse the record) and
     *     {@value #ID_COUNT}
     * @param prompts whether the table has a {@value #PROMPT} column (the model then needs a text encoder)
     */
    public record Requests(Dataset<Row> rows, boolean prompts) {
    }

    private RequestTable() {
    }

    /**
     * Reads the requests.
     *
     * @throws RequestTableException if the file cannot be read, a column is unknown or a required one is missing
     */
    public static Requests read(SparkSession spark, String file, Format format) {
        Dataset<Row> raw;
        try {
            raw = switch (format) {
                case CSV -> spark.read().option("header", "true").csv(file);
                // As written: inferred numbers would widen a column with one 1.5 to double, rounding 64-bit seeds.
                case JSON -> spark.read().option("primitivesAsString", "true").json(file);
                case PARQUET -> spark.read().parquet(file);
            };
        } catch (Exception e) { // Spark throws its checked AnalysisException undeclared
            throw new RequestTableException("cannot read the requests " + file + " as " + format + ": "
                    + firstLine(e.getMessage()), e);
        }
        Map<String, String> byName = columnsByName(raw, file);
        for (String required : List.of(ID, SEED)) {
            if (!byName.containsKey(required)) {
                throw new RequestTableException(file + " has no " + required + " column (its columns: "
                        + String.join(", ", raw.columns()) + ")");
            }
        }
        if (!byName.containsKey(LABEL) && !byName.containsKey(PROMPT) && !byName.containsKey(EMBEDDINGS)) {
            throw new RequestTableException(file + " has no " + LABEL + " or " + PROMPT + " column: every request needs a "
                    + "class label (or a prompt, for a text model)");
        }
        List<Column> columns = new ArrayList<>();
        for (String c : COLUMNS) {
            columns.add((byName.containsKey(c) ? text(raw, byName.get(c), c) : lit(null).cast("string")).as(c));
        }
        columns.add((byName.containsKey(CORRUPT_RECORD) ? col(CORRUPT_RECORD) : lit(null).cast("string")).as(CORRUPT_RECORD));
        columns.add(count(lit(1)).over(Window.partitionBy(col(quoted(byName.get(ID))))).as(ID_COUNT));
        return new Requests(raw.select(columns.toArray(new Column[0])), byName.containsKey(PROMPT));
    }

    /** Lower-case name to the table's own name; unknown and doubled names are errors. */
    private static Map<String, String> columnsByName(Dataset<Row> raw, String file) {
        Map<String, String> byName = new LinkedHashMap<>();
        List<String> unknown = new ArrayList<>();
        for (String name : raw.columns()) {
            String key = name.strip().toLowerCase(Locale.ROOT);
            if (!COLUMNS.contains(key) && !key.equals(CORRUPT_RECORD)) {
                unknown.add(name);
            } else if (byName.putIfAbsent(key, name) != null) {
                throw new RequestTableException(file + " has the column " + key + " twice (" + byName.get(key) + ", " + name
                        + ")");
            }
        }
        if (!unknown.isEmpty()) {
            throw new RequestTableException(file + " has unknown column(s) " + String.join(", ", unknown) + "; the columns are "
                    + String.join(", ", COLUMNS));
        }
        return byName;
    }

    /**
     * A column as text. A floating-point {@value #SEED} (a Parquet double, say) beyond 2^53 is no
     * longer an exact integer: its text says so, and the row fails instead of running a rounded seed.
     */
    private static Column text(Dataset<Row> raw, String name, String column) {
        Column c = col(quoted(name));
        DataType type = raw.schema().apply(name).dataType();
        if (column.equals(SEED) && (type instanceof DoubleType || type instanceof FloatType)) {
            return when(abs(c).geq(lit(EXACT_DOUBLE_INTEGERS)), concat(c.cast("string"),
                    lit(" (a floating-point seed beyond 2^53 is not exact)"))).otherwise(c.cast("string"));
        }
        return c.cast("string");
    }

    /** A column name as an identifier Spark resolves literally (it may contain spaces or dots). */
    private static String quoted(String name) {
        return "`" + name.replace("`", "``") + "`";
    }

    static String firstLine(String message) {
        if (message == null || message.isBlank()) {
            return "(no message)";
        }
        int nl = message.indexOf('\n');
        return (nl < 0 ? message : message.substring(0, nl)).strip();
    }
}
