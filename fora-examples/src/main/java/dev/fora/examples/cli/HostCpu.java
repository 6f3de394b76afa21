package dev.fora.examples.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The CPU a benchmark ran on: its model name and the instruction-set flags that decide what
 * bf16 and int8 cost (read from {@code /proc/cpuinfo}; "unknown" and absent flags elsewhere).
 * A bf16 number from a CPU without {@code avx512_bf16} or {@code amx_bf16} measures an emulation.
 *
 * @param model the first {@code model name} of {@code /proc/cpuinfo}, or "unknown"
 * @param flags each of {@link #FLAGS}: whether the CPU has it
 */
record HostCpu(String model, Map<String, Boolean> flags) {

    /** The flags a bench reports: bfloat16 dot products (AVX-512, AMX) and int8 VNNI. */
    static final List<String> FLAGS = List.of("avx512_bf16", "amx_bf16", "avx512_vnni");

    /** This host's CPU. */
    static HostCpu detect() {
        try {
            return parse(Files.readAllLines(Path.of("/proc/cpuinfo")));
        } catch (IOException | RuntimeException e) {
            return parse(List.of());
        }
    }

    /** From the lines of a {@code /proc/cpuinfo}. */
    static HostCpu parse(List<String> cpuinfo) {
        String model = "unknown";
        Set<String> have = Set.of();
        for (String line : cpuinfo) {
            int colon = line.indexOf(':');
            if (colon < 0) {
                continue;
            }
            String key = line.substring(0, colon).trim();
            String value = line.substring(colon + 1).trim();
            if (key.equals("model name") && model.equals("unknown")) {
                model = value;
            } else if (key.equals("flags") && have.isEmpty()) {
                have = Set.of(value.split("\\s+"));
            }
        }
        Map<String, Boolean> flags = new LinkedHashMap<>();
        for (String f : FLAGS) {
            flags.put(f, have.contains(f));
        }
        return new HostCpu(model, flags);
    }

    /** "AMD EPYC (avx512_bf16 yes, amx_bf16 no, avx512_vnni yes)". */
    @Override
    public String toString() {
        StringBuilder s = new StringBuilder(model).append(" (");
        flags.forEach((f, on) -> s.append(s.charAt(s.length() - 1) == '(' ? "" : ", ").append(f).append(on ? " yes" : " no"));
        return s.append(')').toString();
    }
}
