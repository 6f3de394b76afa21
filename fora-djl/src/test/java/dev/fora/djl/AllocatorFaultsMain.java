package dev.fora.djl;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.IntStream;

/**
 * Runs in a JVM of its own for {@link NativeAllocatorTest}: generates a batch of 32 guided images
 * twice (warm-up, then measured) and prints the process's minor page faults during the second.
 * With argument {@code keep} it calls {@link NativeAllocator#keepFreedMemory()} first.
 */
final class AllocatorFaultsMain {

    private AllocatorFaultsMain() {
    }

    public static void main(String[] args) throws Exception {
        boolean keep = args[1].equals("keep");
        System.out.println("applied " + (keep && NativeAllocator.keepFreedMemory()));
        try (DiTPipeline pipeline = DiTPipeline.load(Path.of(args[0]),
                DiTPipeline.Options.defaults().withVerifyDigests(false).withClassifier(false))) {
            GenerationRequest request = GenerationRequest.builder(IntStream.range(0, 32).map(i -> i % 10).toArray())
                    .steps(20).policy("taylorseer:3,2").seed(1).build();
            pipeline.generate(request);
            long before = minorFaults();
            pipeline.generate(request);
            System.out.println("faults " + (minorFaults() - before));
        }
    }

    /** Field 10 of /proc/self/stat: minor faults of the whole process. */
    private static long minorFaults() throws Exception {
        String stat = Files.readString(Path.of("/proc/self/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[7]);
    }
}
