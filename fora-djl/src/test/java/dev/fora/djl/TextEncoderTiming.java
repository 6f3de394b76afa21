package dev.fora.djl;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Not a test: times the text encoders of model directories per prompt, side by side (their
 * prompts interleaved, so a changing load on a shared machine hits each alike), and reports the
 * process memory after each load; for the full-size figures in {@code docs/prompts.md}. Digests
 * are not verified (hashing gigabytes would dominate). Wall and process CPU seconds per prompt
 * (one libtorch thread: the CPU time is the work, the wall time adds what other processes took). Usage:
 * {@code TextEncoderTiming PROMPTS DIR...}.
 */
public final class TextEncoderTiming {

    /** The process's CPU time: on a shared machine it is what a prompt costs, where wall time adds the waits. */
    private static final com.sun.management.OperatingSystemMXBean PROCESS =
            (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();

    private TextEncoderTiming() {
    }

    public static void main(String[] args) throws Exception {
        int prompts = Integer.parseInt(args[0]);
        List<TextEncoder> encoders = new ArrayList<>();
        try {
            System.out.printf("before loading: %s%n", memory());
            for (int d = 1; d < args.length; d++) {
                long t0 = System.nanoTime();
                encoders.add(TextEncoder.load(ModelDirectory.open(Path.of(args[d]), false)));
                System.out.printf("loaded %s (incl. one trial prompt) in %.1f s: %s%n", args[d], (System.nanoTime() - t0) / 1e9,
                        memory());
            }
            for (TextEncoder e : encoders) { // the graph optimizer profiles the first calls of a shape
                e.encode(List.of("warm-up one"));
                e.encode(List.of("warm-up two"));
            }
            double[][] seconds = new double[encoders.size()][prompts];
            double[][] cpu = new double[encoders.size()][prompts];
            for (int i = 0; i < prompts; i++) {
                for (int d = 0; d < encoders.size(); d++) {
                    long t = System.nanoTime();
                    long c = PROCESS.getProcessCpuTime();
                    encoders.get(d).encode(List.of("a photograph of an astronaut riding a horse on the moon, " + i));
                    seconds[d][i] = (System.nanoTime() - t) / 1e9;
                    cpu[d][i] = (PROCESS.getProcessCpuTime() - c) / 1e9;
                }
            }
            for (int d = 0; d < encoders.size(); d++) {
                System.out.printf("%s: s per prompt %s, median %.2f; process CPU s per prompt %s, median %.2f%n", args[d + 1],
                        java.util.Arrays.toString(seconds[d]), median(seconds[d]), java.util.Arrays.toString(cpu[d]),
                        median(cpu[d]));
            }
            System.out.printf("end: %s%n", memory());
        } finally {
            encoders.forEach(TextEncoder::close);
        }
    }

    private static double median(double[] values) {
        double[] s = values.clone();
        java.util.Arrays.sort(s);
        return s[s.length / 2];
    }

    /** VmRSS and VmHWM (peak) of this process, from /proc/self/status. */
    static String memory() throws Exception {
        StringBuilder b = new StringBuilder();
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS") || line.startsWith("VmHWM")) {
                b.append(line.replaceAll("\\s+", " ")).append("; ");
            }
        }
        return b.toString();
    }
}
