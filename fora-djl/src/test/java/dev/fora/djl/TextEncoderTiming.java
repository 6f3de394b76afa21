package dev.fora.djl;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Not a test: times a model directory's text encoder per prompt and reports the process memory,
 * for the full-size figures in {@code docs/prompts.md}. Digests are not verified (hashing 9.5 GB
 * would dominate). Usage: {@code TextEncoderTiming DIR [PROMPTS]}.
 */
public final class TextEncoderTiming {

    private TextEncoderTiming() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        int prompts = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        System.out.printf("before load: %s%n", memory());
        long t0 = System.nanoTime();
        try (TextEncoder encoder = TextEncoder.load(ModelDirectory.open(dir, false))) {
            System.out.printf("load (incl. one trial prompt): %.1f s, %s%n", (System.nanoTime() - t0) / 1e9, memory());
            for (int i = 0; i < 2; i++) { // the graph optimizer profiles the first calls of a shape
                encoder.encode(List.of("warm-up prompt " + i));
            }
            for (int i = 0; i < prompts; i++) {
                long t = System.nanoTime();
                encoder.encode(List.of("a photograph of an astronaut riding a horse on the moon, prompt " + i));
                System.out.printf("prompt %d: %.2f s%n", i, (System.nanoTime() - t) / 1e9);
            }
            System.out.printf("after: %s%n", memory());
        }
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
