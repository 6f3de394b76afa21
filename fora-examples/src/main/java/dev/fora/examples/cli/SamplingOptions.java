package dev.fora.examples.cli;

import dev.fora.core.cache.CachePolicy;
import dev.fora.core.model.DiTConfig;
import dev.fora.djl.GenerationRequest.Forward;
import dev.fora.core.sampling.SamplerKind;
import dev.fora.examples.engine.Generator;
import dev.fora.examples.engine.Generator.Job;
import dev.fora.core.model.ClassLabels;
import java.util.List;
import java.util.Objects;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** What to sample: classes, samples per class, sampler, steps, guidance, seed, batch size. */
public final class SamplingOptions {

    /** Either explicit labels or all classes. */
    static final class Classes {
        @Option(names = "--labels", split = ",", paramLabel = "L",
                description = "Class labels, comma separated (e.g. 0,3,5).")
        List<Integer> labels;

        @Option(names = "--all-classes", description = "Every class of the model once (times --per-class).")
        boolean allClasses;
    }

    @ArgGroup(exclusive = true, multiplicity = "0..1")
    Classes classes;

    @Option(names = "--per-class", paramLabel = "N", defaultValue = "1",
            description = "Samples per class label (default: ${DEFAULT-VALUE}).")
    int perClass;

    /** How to sample: sampler, steps, guidance, prompts. */
    @Mixin
    SamplerOptions samplerOptions;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0",
            description = "Noise seed; image i uses seed + i, whatever --batch is (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "32",
            description = "Images per generation call (default: ${DEFAULT-VALUE}).")
    int batch;

    /** The sampler, or a usage error. */
    SamplerKind samplerKind() {
        return samplerOptions.samplerKind();
    }

    /** A job of these images under this policy on the component path, with these sampling options. */
    Job job(int[] labels, CachePolicy policy) {
        return new Job(labels, samplerKind(), samplerOptions.steps, samplerOptions.cfg, policy, seed, batch,
                Forward.CACHED, !samplerOptions.noFiniteCheck);
    }

    /** Checks the numbers that need no model. */
    void validate() {
        samplerOptions.samplerKind();
        samplerOptions.checkSteps();
        Checks.atLeast("--per-class", perClass, 1);
        Checks.atLeast("--batch", batch, 1);
        samplerOptions.checkCfg();
    }

    /**
     * The class label of every image, each class {@code --per-class} times in a row; default
     * (neither {@code --labels} nor {@code --all-classes}): all classes.
     */
    int[] imageLabels(DiTConfig config) {
        return repeat(distinctLabels(config), perClass);
    }

    /** {@link #imageLabels(DiTConfig)}, or for a text-conditioned model the prompt rows. */
    int[] imageRows(Generator generator) {
        return repeat(distinctRows(generator), perClass);
    }

    /**
     * The labels asked for ({@link #distinctLabels(DiTConfig)}), or for a text-conditioned model
     * the prompt rows: all of them, or those {@code --labels} names by index.
     */
    int[] distinctRows(Generator generator) {
        if (generator.prompts().isEmpty()) {
            return distinctLabels(generator.config());
        }
        int n = generator.prompts().get().size();
        int[] rows;
        if (classes == null || classes.allClasses || classes.labels == null) {
            rows = java.util.stream.IntStream.range(0, n).toArray();
        } else {
            rows = classes.labels.stream().filter(Objects::nonNull).mapToInt(Integer::intValue).toArray();
            for (int i = 0; i < rows.length; i++) {
                if (rows[i] < 0 || rows[i] >= n) {
                    throw new CliException(ExitCodes.USAGE, "--labels: prompt " + rows[i] + " at position " + i + " is out of "
                            + "range: there are " + n + " prompts (0.." + (n - 1) + ")");
                }
            }
            if (rows.length == 0) {
                throw new CliException(ExitCodes.USAGE, "--labels: no prompt index given (e.g. --labels 0,2)");
            }
        }
        if ((long) rows.length * perClass > MAX_IMAGES) {
            throw new CliException(ExitCodes.USAGE, rows.length + " prompt(s) x --per-class " + perClass + " is more than "
                    + MAX_IMAGES + " images");
        }
        return rows;
    }

    /** The labels asked for, each once, checked against the model's classes. */
    int[] distinctLabels(DiTConfig config) {
        int n = config.numClasses();
        int[] labels;
        if (classes == null || classes.allClasses || classes.labels == null) {
            labels = new int[n];
            for (int i = 0; i < n; i++) {
                labels[i] = i;
            }
        } else {
            labels = classes.labels.stream().filter(Objects::nonNull).mapToInt(Integer::intValue).toArray();
            if (labels.length == 0) {
                throw new CliException(ExitCodes.USAGE, "--labels: no label given (e.g. --labels 0,3,5)");
            }
            try {
                config.conditioning().check(ClassLabels.of(labels), labels.length, false);
            } catch (IllegalArgumentException e) {
                throw new CliException(ExitCodes.USAGE, "--labels: " + e.getMessage(), e);
            }
        }
        if ((long) labels.length * perClass > MAX_IMAGES) {
            throw new CliException(ExitCodes.USAGE, labels.length + " label(s) x --per-class " + perClass + " is more than "
                    + MAX_IMAGES + " images");
        }
        return labels;
    }

    /** More images than one run may hold (their pixels stay in memory for the grid and metrics). */
    static final int MAX_IMAGES = 100_000;

    static int[] repeat(int[] labels, int times) {
        int[] out = new int[labels.length * times];
        for (int i = 0; i < labels.length; i++) {
            for (int k = 0; k < times; k++) {
                out[i * times + k] = labels[i];
            }
        }
        return out;
    }
}
