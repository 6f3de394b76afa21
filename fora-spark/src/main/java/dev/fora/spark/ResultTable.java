package dev.fora.spark;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.engine.GenerationStats;
import dev.fora.djl.GeneratedImages;
import dev.fora.djl.GenerationRequest;
import java.nio.file.Path;
import org.apache.spark.sql.Encoder;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * The results table the job writes as Parquet: one row per request row, whether it produced an
 * image ({@value #OK}) or not ({@value #ERROR}, with the reason). The request's resolved values
 * (defaults applied; {@code label} or {@code prompt}, the other null) and the generation's
 * figures are null on error rows.
 */
public final class ResultTable {

    /** Status of a request that produced its image. */
    public static final String OK = "ok";
    /** Status of a request that did not; {@code error} says why. */
    public static final String ERROR = "error";

    /** The columns. */
    public static final StructType SCHEMA = new StructType()
            .add("id", DataTypes.StringType, true)
            .add("status", DataTypes.StringType, false)
            .add("error", DataTypes.StringType, true)
            .add("label", DataTypes.IntegerType, true)
            .add("prompt", DataTypes.StringType, true)
            .add("seed", DataTypes.LongType, true)
            .add("policy", DataTypes.StringType, true)
            .add("sampler", DataTypes.StringType, true)
            .add("steps", DataTypes.IntegerType, true)
            .add("cfg", DataTypes.DoubleType, true)
            .add("compute_fraction", DataTypes.DoubleType, true)
            .add("flop_speedup", DataTypes.DoubleType, true)
            .add("cache_peak_bytes", DataTypes.LongType, true)
            .add("wall_ms", DataTypes.DoubleType, true)
            .add("output", DataTypes.StringType, true);

    static final Encoder<Row> ENCODER = Encoders.row(SCHEMA);

    private ResultTable() {
    }

    /** The row of a generated image. */
    static Row ok(ImageRequest request, GeneratedImages images, Path file) {
        GenerationRequest g = request.generation();
        GenerationStats stats = images.stats();
        return RowFactory.create(request.id(), OK, null, request.label(), request.prompt(), g.seed(), CachePolicies.toSpec(g.policy()),
                g.sampler().id(), g.steps(), g.cfgScale(), stats.computeFraction(), stats.flopSpeedup(),
                stats.peakCacheBytes(), images.elapsedNanos() / 1e6, file.toString());
    }

    /** The row of a request that could not be generated. */
    static Row error(String id, String message) {
        return RowFactory.create(id, ERROR, message, null, null, null, null, null, null, null, null, null, null, null, null);
    }
}
