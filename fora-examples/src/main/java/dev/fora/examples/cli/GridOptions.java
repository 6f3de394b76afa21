package dev.fora.examples.cli;

import dev.fora.examples.image.ImageGrid;
import picocli.CommandLine.Option;

/** How to lay out a PNG grid of images ({@code generate}, {@code compare}). */
public final class GridOptions {

    @Option(names = "--scale", paramLabel = "S",
            description = "Nearest-neighbour upscaling of each image (default: to at least 64 px).")
    Integer scale;

    /** A usage error unless {@code --scale} is absent or at least 1. */
    void validate() {
        if (scale != null) {
            Checks.atLeast("--scale", scale, 1);
        }
    }

    /** The grid for images of this height: {@code --scale}, or upscaled to at least 64 px. */
    ImageGrid grid(int imageHeight) {
        return scale != null ? new ImageGrid(scale, 2) : ImageGrid.forImageSize(imageHeight);
    }
}
