package dev.fora.examples.cli;

import dev.fora.djl.NativeAllocator;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The machine a number was measured on: CPU model, the instruction sets bf16 and int8 speed depend on,
 * and the native allocator's settings.
 */
final class Host {

    private static final List<String> FLAGS = List.of("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni");

    private Host() {
    }

    /** {@code cpu}, {@code cores} and one boolean per flag, read from {@code /proc/cpuinfo} where there is one. */
    static Map<String, Object> describe() {
        Map<String, Object> out = new LinkedHashMap<>();
        String model = "unknown";
        String flags = "";
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name") && model.equals("unknown")) {
                    model = line.substring(line.indexOf(':') + 1).strip();
                } else if (line.startsWith("flags") && flags.isEmpty()) {
                    flags = " " + line.substring(line.indexOf(':') + 1).strip() + " ";
                }
            }
        } catch (IOException | RuntimeException e) {
            // no /proc/cpuinfo (not Linux): the model stays unknown and every flag false
        }
        out.put("cpu", model);
        out.put("cores", Runtime.getRuntime().availableProcessors());
        for (String f : FLAGS) {
            out.put(f, flags.contains(" " + f + " "));
        }
        out.put("malloc", NativeAllocator.describe());
        return out;
    }
}
