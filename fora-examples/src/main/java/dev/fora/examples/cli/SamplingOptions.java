package dev.fora.examples.cli;

import dev.fora.core.cache.CachePolicy;
import dev.fora.core.model.DiTConfig;
import dev.fora.djl.SamplerKind;
import dev.fora.examples.engine.Generator;
import dev.fora.examples.engine.Generator.Job;
import java.util.ArrayList;
import java.util.List;
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

    @Mixin
    SamplerOptions sampler;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0",
            description = "Noise seed; batch b uses seed + b (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "32",
            description = "Images per generation call (default: ${DEFAULT-VALUE}).")
    int batch;

    /** The sampler, or a usage error. */
    SamplerKind samplerKind() {
        return sampler.samplerKind();
    }

    /** A job of these images under this policy on the component path, with these sampling options. */
    Job job(int[] labels, CachePolicy policy) {
        return new Job(labels, samplerKind(), sampler.steps, sampler.cfg, policy, seed, batch,
                Generator.Path.COMPONENTS);
    }

    /** Checks the numbers that need no model. */
    void validate() {
        sampler.samplerKind();
        sampler.checkSteps();
        Checks.atLeast("--per-class", perClass, 1);
        Checks.atLeast("--batch", batch, 1);
        sampler.checkCfg();
    }

    /**
     * The class label of every image, each class {@code --per-class} times in a row; default
     * (neither {@code --labels} nor {@code --all-classes}): all classes.
     */
    int[] imageLabels(DiTConfig config) {
        return repeat(distinctLabels(config), perClass);
    }

    /** The labels asked for, each once, checked against the model's classes. */
    int[] distinctLabels(DiTConfig config) {
        int n = config.numClasses();
        if (classes == null || classes.allClasses || classes.labels == null) {
            int[] all = new int[n];
            for (int i = 0; i < n; i++) {
                all[i] = i;
            }
            return all;
        }
        List<Integer> out = new ArrayList<>();
        for (Integer l : classes.labels) {
            if (l == null || l < 0 || l >= n) {
                throw new CliException(ExitCodes.USAGE, "label " + l + " is out of range: the model has " + n
                        + " classes (0.." + (n - 1) + ")");
            }
            out.add(l);
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

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
