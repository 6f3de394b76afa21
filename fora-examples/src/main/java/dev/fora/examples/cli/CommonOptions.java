package dev.fora.examples.cli;

import ai.djl.Device;
import dev.fora.djl.DiTPipeline;
import dev.fora.djl.ModelLoadException;
import dev.fora.djl.NativeAllocator;
import dev.fora.examples.engine.Generator;
import dev.fora.model.ShippedModel;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Options every command takes: the model, threads, the allocator, number format, device and output verbosity. */
public final class CommonOptions {

    @Option(names = "--model", paramLabel = "DIR",
            description = "Exported model directory (manifest.json + TorchScript files). Default: the model shipped in "
                    + "this jar (dit-patterns, extracted to ~/.cache/fora4j or $FORA_CACHE_DIR on first use).")
    Path model;

    @Option(names = "--threads", paramLabel = "N",
            description = "libtorch intra-op threads (default: libtorch's choice, usually the number of cores).")
    Integer threads;

    @Option(names = "--malloc", paramLabel = "MODE", defaultValue = "default",
            description = "glibc's malloc: default, or keep: keep freed memory mapped, so that each step's temporaries "
                    + "do not page-fault again (NativeAllocator.keepFreedMemory(); the process keeps its peak native "
                    + "memory; allocator settings in the environment win). Measure both on your host.")
    String malloc;

    @Option(names = "--dtype", paramLabel = "TYPE", defaultValue = "fp32",
            description = "Number format of the DiT: fp32 (default), bf16 (weights, arithmetic and cache; the model "
                    + "directory's bfloat16 variant, fora_tools.export --bf16) or int8 (the blocks' linear layers "
                    + "quantized, cache float32; fora_tools.export --int8). bench takes several, separated by commas "
                    + "(fp32,bf16,int8), and interleaves their rounds.")
    String dtype;

    @Option(names = "--device", paramLabel = "DEV", defaultValue = "cpu",
            description = "Where the model runs: cpu (default), gpu (the first GPU) or gpu:N.")
    String device;

    @Option(names = {"-q", "--quiet"}, description = "No progress bar.")
    boolean quiet;

    @Option(names = {"-v", "--verbose"}, description = "Log what happens and print stack traces of errors.")
    boolean verbose;

    /** The model directory to use: {@code --model} or the extracted shipped model. */
    Path modelDirectory() {
        if (model != null) {
            return model;
        }
        try {
            return ShippedModel.extract();
        } catch (IOException e) {
            throw new CliException(ExitCodes.MODEL, "cannot use the shipped model: " + e.getMessage(), e);
        }
    }

    /** {@code --device}: {@code cpu}, {@code gpu} or {@code gpu:N}, or a usage error. */
    static Device device(String name) {
        String n = name.strip().toLowerCase(java.util.Locale.ROOT);
        if (n.equals("cpu")) {
            return Device.cpu();
        }
        if (n.equals("gpu")) {
            return Device.gpu();
        }
        if (n.matches("gpu:[0-9]{1,4}")) {
            return Device.gpu(Integer.parseInt(n.substring(4)));
        }
        throw new CliException(ExitCodes.USAGE, "--device must be cpu, gpu or gpu:N (N = 0, 1, ...), got '" + name + "'");
    }

    /** Applies {@code --threads} and {@code --malloc} (before the engine starts) and loads the model. */
    Generator load() {
        return load(dtype);
    }

    /** {@link #load()} in number format {@code type} ({@code fp32}, {@code bf16} or {@code int8}) instead of {@code --dtype}. */
    Generator load(String type) {
        applyEngineOptions();
        DiTPipeline.Precision precision = switch (type) {
            case "fp32" -> DiTPipeline.Precision.FLOAT32;
            case "bf16" -> DiTPipeline.Precision.BFLOAT16;
            case "int8" -> DiTPipeline.Precision.INT8;
            default -> throw new CliException(ExitCodes.USAGE, "--dtype must be fp32, bf16 or int8, got " + type);
        };
        Device onDevice = device(device);
        Path dir = modelDirectory();
        try {
            return Generator.open(dir, precision, onDevice);
        } catch (ModelLoadException e) {
            if (e.reason() == ModelLoadException.Reason.DEVICE_UNAVAILABLE) {
                throw new CliException(ExitCodes.USAGE, "--device " + device + ": " + e.getMessage(), e);
            }
            throw new CliException(ExitCodes.MODEL, "cannot load the model: " + e.getMessage(), e);
        }
    }

    /** Applies {@code --threads} and {@code --malloc}; before the engine starts. */
    void applyEngineOptions() {
        if (threads != null) {
            Checks.atLeast("--threads", threads, 1);
            System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(threads));
            if (System.getProperty("ai.djl.pytorch.num_interop_threads") == null) {
                System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
            }
        }
        switch (malloc) {
            case "default" -> {
            }
            case "keep" -> {
                if (!NativeAllocator.keepFreedMemory()) {
                    System.err.println("fora: --malloc keep has no effect here (not glibc, or the environment sets the "
                            + "allocator: " + NativeAllocator.describe() + ")");
                }
            }
            default -> throw new CliException(ExitCodes.USAGE, "--malloc must be default or keep, got '" + malloc + "'");
        }
    }
}
