package dev.fora.core.recording;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.cache.NoCache;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.testing.PolicyHarness;
import dev.fora.core.testing.ReplayReport;
import dev.fora.core.testing.SyntheticDiT;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The replay example of docs/policies.md ("Write your own policy"), as written there, on a recording
 * of the synthetic DiT. {@code DocsExamplesTest} (fora-examples) checks that the snippet still
 * appears here line by line.
 */
class ReplayExampleTest {

    @Test
    void replayAPolicyAgainstARecordingFile(@TempDir Path dir) throws IOException {
        Path recordingFile = dir.resolve("ddim30.frec");
        RecordingTest.record(new ArrayOps(), SyntheticDiT.SMALL, NoCache.INSTANCE).write(recordingFile);

        Recording r = Recording.read(recordingFile);
        ReplayReport rep = PolicyHarness.replay(r, "taylorseer:5,3");  // milliseconds, no model
        rep.computeFraction(); rep.flopSpeedup(); rep.estimatedError();  // and rep.stats() per step, image, block, branch

        assertThat(rep.computeFraction()).isEqualTo(PolicyHarness.builder().steps(30).build().run("taylorseer:5,3").computeFraction());
        assertThat(rep.flopSpeedup()).isGreaterThan(1);
        assertThat(rep.estimatedError()).isPositive();
        assertThat(rep.leakedTensors()).isZero();
    }
}
