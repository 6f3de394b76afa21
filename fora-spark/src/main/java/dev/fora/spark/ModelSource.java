package dev.fora.spark;

import dev.fora.model.ShippedModel;
import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;
import org.apache.spark.SparkEnv;
import org.apache.spark.SparkFiles;

/**
 * Where a JVM of the job finds the model: the model shipped inside the job jar, or a directory.
 * It travels to the executors as a description and is resolved in the JVM that loads it,
 * because the driver and the executors may see the model at different places.
 *
 * @param path the model directory as the user gave it, or {@code null} for the shipped model
 */
public record ModelSource(String path) implements Serializable {

    /** The model shipped inside the jar, extracted by each JVM to its cache directory ({@link ShippedModel}). */
    public static ModelSource shipped() {
        return new ModelSource(null);
    }

    /**
     * A model directory: absolute (a shared file system mounted at the same place everywhere) or
     * relative; a relative path that does not exist in the working directory is looked up among
     * the files Spark distributed ({@code --archives model.zip#NAME} or {@code --files}), where
     * {@link SparkFiles#get} puts them.
     */
    public static ModelSource directory(String path) {
        return new ModelSource(Objects.requireNonNull(path, "path"));
    }

    /**
     * The model directory in this JVM.
     *
     * @throws IOException if the shipped model cannot be extracted (see {@link ShippedModel#extract()})
     */
    public Path resolve() throws IOException {
        if (path == null) {
            return ShippedModel.extract();
        }
        Path dir = Path.of(path);
        if (!dir.isAbsolute() && !Files.exists(dir) && SparkEnv.get() != null) {
            Path distributed = Path.of(SparkFiles.get(path));
            if (Files.exists(distributed)) {
                return distributed;
            }
        }
        return dir;
    }

    @Override
    public String toString() {
        return path == null ? "shipped in the jar" : path;
    }
}
