package dev.fora.examples.cli;

import dev.fora.djl.SamplerKind;
import picocli.CommandLine.Option;

/**
 * How to sample, shared by every command: sampler, steps and guidance scale. Mixed into
 * {@link SamplingOptions} ({@code generate}, {@code compare}) and {@code bench}.
 */
public final class SamplerOptions {

    @Option(names = "--sampler", paramLabel = "NAME", defaultValue = "ddim",
            description = "ddim, ddpm or dpm-solver++ (default: ${DEFAULT-VALUE}).")
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

    /** The sampler, or a usage error. */
    SamplerKind samplerKind() {
        try {
            return SamplerKind.parse(sampler);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "--sampler: " + e.getMessage());
        }
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
