package dev.fora.examples.cli;

import dev.fora.core.recording.Recording;
import dev.fora.examples.engine.Generator;
import dev.fora.examples.engine.Generator.Job;
import dev.fora.examples.progress.Progress;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code fora record}: one uncached generation's branch outputs per step and block, with the measurements, to a file. */
@Command(name = "record", sortOptions = false, mixinStandardHelpOptions = true,
        description = {"Record one uncached generation for offline policy tuning.",
                "Writes every step's tokens, modulations, branch outputs (attention, MLP, ... per block) and modulated "
                + "inputs, for every image and CFG half, to a file that 'fora replay' (PolicyHarness.replay) runs "
                + "cache policies against without the model, in milliseconds.",
                "Size: steps x 2 (CFG) x images x tokens x hidden x 4 bytes per tensor, (1 + blocks x (branches + 1)) "
                + "tensors per step: 16 MB per 50-step image of the shipped model."},
        footer = {"", "Example: fora record --labels 0,5 --steps 50 --out ddim50.frec"})
public final class RecordCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Mixin
    SamplingOptions sampling;

    @Option(names = {"-o", "--out"}, paramLabel = "FILE", defaultValue = "recording.frec",
            description = "Recording to write (default: ${DEFAULT-VALUE}).")
    Path out;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() {
        sampling.validate();
        Outputs.checkWritable(out, "--out", spec);
        try (Generator generator = common.load()) {
            sampling.samplerOptions.configure(generator);
            int[] labels = labels(generator);
            checkHeap(generator, labels.length);
            Job job = sampling.job(labels, dev.fora.core.cache.NoCache.INSTANCE);
            Map<String, String> meta = metadata(generator, sampling);
            Recording recording;
            try (Progress progress = Progress.create(common.quiet, "record", job.steps(), labels.length)) {
                progress.phase("none");
                recording = generator.record(job, progress, meta);
            }
            Outputs.write(out, "--out", recording::write);
            PrintWriter stdout = spec.commandLine().getOut();
            stdout.printf(Locale.ROOT, "model             %s (%s)%n", generator.manifest().name(), generator.directory());
            stdout.printf(Locale.ROOT, "images            %d (%s %s), %s %d steps, cfg %s, seed %d%n", labels.length,
                    generator.prompts().isPresent() ? "prompts" : "labels", java.util.Arrays.toString(labels), sampling.samplerKind(), sampling.samplerOptions.steps,
                    GenerateCommand.fmt(sampling.samplerOptions.cfg), sampling.seed);
            stdout.printf(Locale.ROOT, "recorded          %d steps x %d rows: tokens, %d modulations, %d branch outputs%s per step%n",
                    recording.steps(), recording.rows(), generator.config().depth(), generator.config().features(),
                    recording.hasModulatedInputs() ? ", " + generator.config().depth() + " modulated inputs" : "");
            stdout.printf(Locale.ROOT, "wrote             %s (%s)%n", out, GenerateCommand.bytes(recording.dataBytes()));
            stdout.printf(Locale.ROOT, "replay with       fora replay --recording %s --policy fora:3,taylorseer:5,...%n", out);
            stdout.flush();
        }
        return ExitCodes.OK;
    }

    /**
     * A usage error, before sampling, if the recording would not fit the heap (it is held in
     * memory until written): says how many images of these steps would fit.
     */
    private void checkHeap(Generator generator, int images) {
        int perImage = sampling.samplerOptions.cfg != 1.0 ? 2 : 1;
        long need = Recording.dataBytes(generator.config(), sampling.samplerOptions.steps, perImage * images, true);
        long one = Recording.dataBytes(generator.config(), sampling.samplerOptions.steps, perImage, true);
        Runtime rt = Runtime.getRuntime();
        // Half the free heap: sampling needs room besides the recorded tensors.
        long free = (rt.maxMemory() - (rt.totalMemory() - rt.freeMemory())) / 2;
        if (need > free) {
            throw new CliException(ExitCodes.USAGE, String.format(Locale.ROOT, "a recording of %d images x %d steps needs "
                    + "%s of heap, but %s is free for it (half the free heap of -Xmx %s): at most %d images of %d steps fit;"
                    + " record fewer images or steps, or raise -Xmx (FORA_JAVA_OPTS)", images, sampling.samplerOptions.steps,
                    GenerateCommand.bytes(need), GenerateCommand.bytes(free), GenerateCommand.bytes(rt.maxMemory()),
                    free / one, sampling.samplerOptions.steps));
        }
    }

    /**
     * {@code --labels}/{@code --all-classes} as given (for a text-conditioned model, prompt rows);
     * without either, the first two classes or prompts (a recording is large).
     */
    private int[] labels(Generator generator) {
        if (sampling.classes == null) {
            int n = Math.min(2, generator.rows());
            int[] first = new int[n];
            for (int i = 0; i < n; i++) {
                first[i] = i;
            }
            return SamplingOptions.repeat(first, sampling.perClass);
        }
        return sampling.imageRows(generator);
    }

    static Map<String, String> metadata(Generator generator, SamplingOptions sampling) {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("model", generator.manifest().name());
        meta.put("sampler", sampling.samplerKind().id());
        meta.put("steps", Integer.toString(sampling.samplerOptions.steps));
        meta.put("cfg", Double.toString(sampling.samplerOptions.cfg));
        meta.put("seed", Long.toString(sampling.seed));
        return meta;
    }
}
