package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Closing a pipeline or a generation while other threads use it: used to kill the JVM with a
 * SIGSEGV in libtorch, so it runs in a JVM of its own ({@link CloseWhileGeneratingMain}).
 */
class CloseWhileGeneratingTest {

    private static final int ROUNDS = 6;

    @Test
    void closingWhileGeneratingNeverCrashes() throws Exception {
        List<String> command = ForkedJvm.command("512m", CloseWhileGeneratingMain.class,
                TestModels.modelDir().toAbsolutePath().toString(), Integer.toString(ROUNDS));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        boolean finished = process.waitFor(3, TimeUnit.MINUTES);
        if (!finished) {
            process.destroyForcibly();
        }
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        System.out.print(output);
        assertThat(finished).as("the forked JVM finished in time; output:%n%s", output).isTrue();
        assertThat(process.exitValue()).as("exit code of the forked JVM; output:%n%s", output).isZero();
        List<String> rounds = output.lines().filter(l -> l.startsWith("round ")).toList();
        assertThat(rounds).hasSize(ROUNDS);
        // the race was run: generations were stopped mid-way, and a generation was closed while stepping
        assertThat(rounds).anyMatch(l -> !l.contains(" 0 cancelled mid-generation"));
        assertThat(rounds).anyMatch(l -> l.endsWith(" 1 stepping generation closed"));
    }
}
