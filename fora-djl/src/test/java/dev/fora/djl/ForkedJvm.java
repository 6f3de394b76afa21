package dev.fora.djl;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The command line of a test's own JVM, for what is process-wide or may crash it: offline, one libtorch thread. */
final class ForkedJvm {

    private ForkedJvm() {
    }

    /** {@code java} with this test's class path, heap limit {@code maxHeap} (e.g. {@code 512m}), running {@code main}. */
    static List<String> command(String maxHeap, Class<?> main, String... args) {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> command = new ArrayList<>(List.of(java.toString(), "-Xmx" + maxHeap, "-Dai.djl.offline=true",
                "-Dai.djl.pytorch.num_threads=1", "-Dai.djl.pytorch.num_interop_threads=1",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=error", "-cp", System.getProperty("java.class.path"),
                main.getName()));
        command.addAll(List.of(args));
        return command;
    }
}
