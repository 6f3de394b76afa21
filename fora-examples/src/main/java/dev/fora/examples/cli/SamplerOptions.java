package dev.fora.examples.cli;

import dev.fora.core.model.TextEmbeddings;
import dev.fora.core.sampling.SamplerKind;
import dev.fora.djl.ModelLoadException;
import dev.fora.djl.TextEmbeddingFiles;
import dev.fora.djl.TextEncoder;
import dev.fora.examples.engine.Generator;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/**
 * How to sample, shared by every command: sampler, steps, guidance (scale and guided channels)
 * and, for a text-conditioned model, the prompts' embeddings. Mixed into
 * {@link SamplingOptions} ({@code generate}, {@code compare}) and {@code bench}.
 */
public final class SamplerOptions {

    @Option(names = "--sampler", paramLabel = "NAME", defaultValue = "ddim",
            description = "ddim, ddpm, dpm-solver++ (DiT's respaced timesteps) or dpms (DPM-Solver++(2M) on uniform "
                    + "continuous time, as PixArt-α's DPMS) (default: ${DEFAULT-VALUE}).")
    String sampler;

    @Option(names = "--steps", paramLabel = "K", defaultValue = "50",
            description = "Sampler steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--cfg", paramLabel = "SCALE", defaultValue = "1.5",
            description = "Classifier-free guidance scale; 1 disables guidance (default: ${DEFAULT-VALUE}).")
    double cfg;

    @Option(names = "--no-finite-check",
            description = "Do not check each step's model output for NaN or infinity (by default such output stops "
                    + "the run with exit code 5; without the check such images come out black and compare's metrics "
                    + "fail).")
    boolean noFiniteCheck;

    @Option(names = "--text-embeddings", paramLabel = "FILE",
            description = "Prompts of a text-conditioned model (PixArt-α): a .npz with 'embeddings' [N, tokens, width] "
                    + "float32 and optionally 'mask' [N, tokens] (fora_tools.text_embeddings writes it). One image row per "
                    + "prompt; --labels picks prompts by index.")
    Path textEmbeddings;

    @Option(names = "--prompt", paramLabel = "TEXT",
            description = "A prompt of a text-conditioned model whose directory has a text encoder (fora_tools.export_t5); "
                    + "repeat for more. One image row per prompt.")
    List<String> prompt;

    @Option(names = "--prompts", paramLabel = "FILE",
            description = "Prompts of a text-conditioned model, one per line (UTF-8; blank lines are skipped).")
    Path promptsFile;

    @Option(names = "--guided-channels", paramLabel = "N",
            description = "Latent channels classifier-free guidance mixes (default: the model's, e.g. 3 of 4 for an "
                    + "official DiT export, as DiT's sample.py).")
    Integer guidedChannels;

    /**
     * Reads {@code --text-embeddings} and applies it and {@code --guided-channels} to the loaded
     * model: a usage error if the file cannot be read, does not fit the model, is missing for a
     * text-conditioned model or given for a class-conditioned one.
     */
    void configure(Generator generator) {
        boolean text = generator.manifest().textConditioned();
        if (guidedChannels != null && (guidedChannels < 1 || guidedChannels > generator.config().inChannels())) {
            throw new CliException(ExitCodes.USAGE, "--guided-channels must be from 1 to the model's "
                    + generator.config().inChannels() + " latent channels, got " + guidedChannels);
        }
        int guided = guidedChannels == null ? 0 : guidedChannels;
        if (prompt != null || promptsFile != null) {
            if (textEmbeddings != null) {
                throw new CliException(ExitCodes.USAGE, "give the prompts either as text (--prompt, --prompts) or as "
                        + "embeddings (--text-embeddings), not both");
            }
            if (!text) {
                throw new CliException(ExitCodes.USAGE, "--prompt: " + generator.manifest().name() + " is conditioned on "
                        + "class labels, not on text (use --labels)");
            }
            generator.condition(encode(generator.directory(), prompts(prompt, promptsFile)), guided);
            return;
        }
        if (textEmbeddings == null) {
            if (text) {
                throw new CliException(ExitCodes.USAGE, generator.manifest().name() + " is conditioned on text: give its "
                        + "prompts with --prompt TEXT or --prompts FILE, or their embeddings with --text-embeddings FILE "
                        + "(.npz, see fora_tools.text_embeddings)");
            }
            generator.condition(null, guided);
            return;
        }
        if (!text) {
            throw new CliException(ExitCodes.USAGE, "--text-embeddings: " + generator.manifest().name() + " is conditioned "
                    + "on class labels, not on text (use --labels)");
        }
        Inputs.checkReadable(textEmbeddings, "--text-embeddings");
        TextEmbeddings prompts;
        try {
            prompts = TextEmbeddingFiles.read(textEmbeddings);
            generator.config().conditioning().check(prompts, prompts.size(), false);
        } catch (IOException e) {
            throw Inputs.unreadable("--text-embeddings", textEmbeddings, e);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "--text-embeddings: " + e.getMessage(), e);
        }
        generator.condition(prompts, guided);
    }

    /**
     * The prompts of {@code --prompts FILE} (one a line, blank lines skipped) followed by those of
     * {@code --prompt}; a usage error if the file cannot be read or there is none.
     */
    static List<String> prompts(List<String> prompt, Path promptsFile) {
        List<String> all = new ArrayList<>();
        if (promptsFile != null) {
            try {
                for (String line : Files.readAllLines(promptsFile, StandardCharsets.UTF_8)) {
                    if (!line.isBlank()) {
                        all.add(line);
                    }
                }
            } catch (IOException e) {
                throw new CliException(ExitCodes.USAGE, "--prompts: cannot read " + promptsFile + ": " + e, e);
            }
        }
        if (prompt != null) {
            all.addAll(prompt);
        }
        if (all.isEmpty()) {
            throw new CliException(ExitCodes.USAGE, "--prompts: " + promptsFile + " has no prompt (one per line)");
        }
        return all;
    }

    /**
     * Encodes prompts with the text encoder of a model directory, which is closed again before
     * sampling; a model error if the directory has none or it does not load.
     */
    static TextEmbeddings encode(Path modelDir, List<String> prompts) {
        try (TextEncoder encoder = TextEncoder.load(modelDir)) {
            return encoder.encode(prompts);
        } catch (ModelLoadException e) {
            throw new CliException(ExitCodes.MODEL, "--prompt: cannot load the text encoder: " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "--prompt: " + e.getMessage(), e);
        }
    }

    /** The sampler, or a usage error. */
    SamplerKind samplerKind() {
        try {
            return SamplerKind.parse(sampler);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "--sampler: " + e.getMessage());
        }
    }

    /** Checks {@code --sampler}, {@code --steps} and {@code --cfg}, in that order: the sampler kind. */
    SamplerKind check() {
        SamplerKind kind = samplerKind();
        checkSteps();
        checkCfg();
        return kind;
    }

    /** A usage error unless {@code --steps} is at least 1. */
    void checkSteps() {
        Checks.atLeast("--steps", steps, 1);
    }

    /** A usage error unless {@code --cfg} is a finite number at least 0. */
    void checkCfg() {
        if (!Double.isFinite(cfg) || cfg < 0) {
            throw new CliException(ExitCodes.USAGE, "--cfg must be a finite number >= 0, got " + cfg);
        }
    }
}
