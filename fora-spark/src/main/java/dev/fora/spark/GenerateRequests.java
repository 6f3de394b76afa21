package dev.fora.spark;

import dev.fora.djl.DiTPipeline;
import dev.fora.djl.GeneratedImages;
import dev.fora.djl.TextEncoder;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Iterator;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;

/**
 * The work of one partition, on an executor: for each request row (as {@link RequestTable#read}
 * gives it) one image, written as {@code <images>/<id>.png}, and one {@link ResultTable} row.
 * Rows are generated one at a time as Spark pulls them, each as a request of one image, so an
 * image does not depend on which rows share its partition. A prompt is encoded by the model
 * directory's text encoder, one prompt per call, so its embeddings do not depend on the others.
 */
final class GenerateRequests implements MapPartitionsFunction<Row, Row> {

    private static final long serialVersionUID = 1L;

    private final ModelSource model;
    private final String imagesDir;
    private final int scale;

    /**
     * @param model the model, loaded once per executor ({@link Pipelines})
     * @param imagesDir the directory of the PNGs, on a file system every executor writes to
     * @param scale each pixel enlarged to {@code scale x scale}
     */
    GenerateRequests(ModelSource model, Path imagesDir, int scale) {
        this.model = model;
        this.imagesDir = imagesDir.toString(); // a Path is not serializable
        this.scale = scale;
    }

    /** @throws IOException the model cannot be loaded: the task fails, and with it the job once Spark gives up */
    @Override
    public Iterator<Row> call(Iterator<Row> requests) throws IOException {
        DiTPipeline pipeline = Pipelines.get(model);
        TextEncoder encoder = Pipelines.textEncoder(model);
        Path dir = Path.of(imagesDir);
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                return requests.hasNext();
            }

            @Override
            public Row next() {
                return generate(pipeline, encoder, dir, requests.next());
            }
        };
    }

    private Row generate(DiTPipeline pipeline, TextEncoder encoder, Path dir, Row row) {
        ImageRequest request;
        GeneratedImages images;
        try {
            request = ImageRequest.parse(row, pipeline.config(), pipeline.manifest().name(), encoder);
            images = pipeline.generate(request.generation());
        } catch (RequestException e) {
            return ResultTable.error(row.getString(row.fieldIndex(RequestTable.ID)), e.getMessage());
        } catch (IllegalArgumentException e) { // a request the model refuses, e.g. a mask policy of another length
            return ResultTable.error(row.getString(row.fieldIndex(RequestTable.ID)), RequestTable.firstLine(e.getMessage()));
        }
        long[] shape = images.shape();
        Path file = dir.resolve(request.id() + ".png");
        ImageFiles.writePng(images.image(0), (int) shape[1], (int) shape[2], (int) shape[3], scale, file);
        return ResultTable.ok(request, images, file);
    }
}
