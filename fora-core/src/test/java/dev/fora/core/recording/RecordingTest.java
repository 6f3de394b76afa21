package dev.fora.core.recording;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.fora.core.cache.CacheDecider;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.Decision;
import dev.fora.core.engine.Generation;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.cache.Measurement;
import dev.fora.core.cache.NoCache;
import dev.fora.core.cache.StepContext;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.DdimSampler;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.PerImageNoise;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.testing.HarnessReport;
import dev.fora.core.testing.PolicyHarness;
import dev.fora.core.testing.ReplayReport;
import dev.fora.core.testing.SyntheticDiT;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Record once, tune offline: the recording, its file, and replaying policies against it. */
class RecordingTest {

    private static final int STEPS = 30;
    private static final int IMAGES = 3;
    private static Recording recording;

    /** An uncached, guided DDIM run of the synthetic DiT, recorded. */
    static Recording record(ArrayOps ops, DiTConfig config, CachePolicy policy) {
        SyntheticDiT model = new SyntheticDiT(ops, config, 1);
        Recorder<ArrayTensor> recorder = new Recorder<>(model, IMAGES, true);
        int[] labels = {2, 5, 7};
        try (Generation<ArrayTensor> g = Generation.builder(recorder, policy).steps(STEPS).images(IMAGES).guided(true).open();
                ArrayTensor out = new DdimSampler(DiffusionSchedule.linear(1000).respace(STEPS)).sample(ops,
                        new ClassifierFreeGuidance<>(ops, g, 1.5, model.unconditional()),
                        new long[] {IMAGES, config.inChannels(), config.inputSize(), config.inputSize()}, ClassLabels.of(labels),
                        PerImageNoise.seeded(42, IMAGES))) {
            assertThat(out.shape()[0]).isEqualTo(IMAGES);
        }
        return recorder.recording(labels, Map.of("sampler", "ddim", "cfg", "1.5"));
    }

    @BeforeAll
    static void recordOnce() {
        ArrayOps ops = new ArrayOps();
        recording = record(ops, SyntheticDiT.SMALL, NoCache.INSTANCE);
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void aRecordingHoldsEveryStepBranchAndModulationOfEveryRow() {
        DiTConfig c = SyntheticDiT.SMALL;
        assertThat(recording.steps()).isEqualTo(STEPS);
        assertThat(recording.rows()).isEqualTo(2 * IMAGES);
        assertThat(recording.hasModulatedInputs()).isTrue();
        assertThat(recording.feature(7, c.feature(3, 1))).hasSize(2 * IMAGES * c.tokens() * c.hiddenSize());
        assertThat(recording.modulation(7, 3, 2)).hasSize(2 * IMAGES * c.hiddenSize());
        assertThat(recording.timestep(0)).isEqualTo(999f);
        assertThat(recording.labels()).containsExactly(2, 5, 7);
        assertThat(recording.conditioning()).isEqualTo(ClassLabels.of(2, 5, 7, 10, 10, 10));
        assertThat(recording.dataBytes()).isEqualTo(STEPS * ((1L + 12 + 6) * 6 * 16 * 32 * 4 + 6 * 6 * 6 * 32 * 4));
        assertThat(recording.modulatedInputChange(0, 0, 0)).isNaN();
        assertThat(recording.modulatedInputChange(5, 1, 0)).isPositive();
        assertThat(recording.stackResidualChange(5, 1)).isPositive();
        assertThat(recording.stackResidualMagnitude(5, 1)).isPositive();
    }

    @Test
    void theFileRoundTripsAndBadFilesAreClearErrors(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("run.frec");
        recording.write(file);
        assertThat(Files.size(file)).isGreaterThan(recording.dataBytes());
        Recording back = Recording.read(file);
        assertThat(back.config()).isEqualTo(recording.config());
        assertThat(back.steps()).isEqualTo(STEPS);
        assertThat(back.images()).isEqualTo(IMAGES);
        assertThat(back.guided()).isTrue();
        assertThat(back.labels()).containsExactly(2, 5, 7);
        assertThat(back.metadata()).containsEntry("sampler", "ddim").containsEntry("cfg", "1.5");
        for (int s = 0; s < STEPS; s += 7) {
            assertThat(back.timestep(s)).isEqualTo(recording.timestep(s));
            assertThat(back.tokens(s)).containsExactly(recording.tokens(s));
            assertThat(back.feature(s, 9)).containsExactly(recording.feature(s, 9));
            assertThat(back.modulation(s, 4, 5)).containsExactly(recording.modulation(s, 4, 5));
            assertThat(back.modulatedInput(s, 2)).containsExactly(recording.modulatedInput(s, 2));
        }
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, Arrays.copyOf(bytes, bytes.length - 5));
        assertThatThrownBy(() -> Recording.read(file)).isInstanceOf(IOException.class).hasMessageContaining("truncated");
        Files.writeString(file, "not a recording at all");
        assertThatThrownBy(() -> Recording.read(file)).isInstanceOf(IOException.class)
                .hasMessageContaining("not a FORA4J recording");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        recording.write(out);
        assertThat(Recording.fromBytes(out.toByteArray()).steps()).isEqualTo(STEPS);
    }

    @Test
    void corruptHeadersAndValuesAreNamedNotThrownAsRuntimeErrors() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        recording.write(out);
        byte[] bytes = out.toByteArray();
        assertThatThrownBy(() -> Recording.fromBytes(edit(bytes, "steps=30", "steps=-1"))).isInstanceOf(IOException.class)
                .hasMessageContaining("corrupt recording: steps is -1");
        assertThatThrownBy(() -> Recording.fromBytes(edit(bytes, "images=3", "images=x"))).isInstanceOf(IOException.class)
                .hasMessageContaining("corrupt recording: images is \"x\", not an integer");
        // from a stream of unknown length, a huge step count is checked against the heap before any allocation
        assertThatThrownBy(() -> Recording.fromBytes(edit(bytes, "steps=30", "steps=2000000000")))
                .isInstanceOf(IOException.class).hasMessageContaining("bytes of heap");
        byte[] infinite = bytes.clone();
        java.nio.ByteBuffer.wrap(infinite).putFloat(infinite.length - 4, Float.POSITIVE_INFINITY);
        assertThatThrownBy(() -> Recording.fromBytes(infinite)).isInstanceOf(IOException.class)
                .hasMessageContaining("corrupt recording: the modulated input of block 5 at step 29 holds Infinity");
    }

    /** The recording's bytes with one header line replaced. */
    private static byte[] edit(byte[] bytes, String from, String to) {
        java.nio.ByteBuffer in = java.nio.ByteBuffer.wrap(bytes);
        int length = in.getInt(14);
        String header = new String(bytes, 18, length, java.nio.charset.StandardCharsets.UTF_8);
        assertThat(header).contains("\n" + from + "\n");
        byte[] h = header.replace("\n" + from + "\n", "\n" + to + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8);
        return java.nio.ByteBuffer.allocate(bytes.length - length + h.length).put(bytes, 0, 14).putInt(h.length).put(h)
                .put(bytes, 18 + length, bytes.length - 18 - length).array();
    }

    @Test
    void onlyAnUncachedRunCanBeRecorded() {
        ArrayOps ops = new ArrayOps();
        assertThatThrownBy(() -> record(ops, SyntheticDiT.SMALL, CachePolicies.parse("fora:3")))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("needs an uncached generation");
    }

    @Test
    void replayingComputesNothingEstimatesTheErrorAndLeaksNothing() {
        ReplayReport none = PolicyHarness.replay(recording, "none");
        assertThat(none.estimatedError()).isZero();
        assertThat(none.computeFraction()).isEqualTo(1.0);
        ReplayReport fora = PolicyHarness.replay(recording, "fora:3");
        assertThat(fora.estimatedError()).isPositive();
        assertThat(fora.leakedTensors()).isZero();
        // a FORA step's error: 0 at full steps, positive at cached ones
        assertThat(fora.error(0, 0)).isZero();
        assertThat(fora.error(1, 0)).isPositive();
        assertThat(fora.error(STEPS - 1, 2)).isZero();
        // fixed schedules decide exactly as in a real run
        HarnessReport real = PolicyHarness.builder().steps(STEPS).build().run("fora:3");
        assertThat(fora.computeFraction()).isEqualTo(real.computeFraction());
        // the estimate grows with the interval
        assertThat(PolicyHarness.replay(recording, "fora:5").estimatedError()).isGreaterThan(fora.estimatedError());
        assertThat(PolicyHarness.replay(recording, "fora:2").estimatedError()).isLessThan(fora.estimatedError());
        assertThat(PolicyHarness.replay(recording, "taylorseer:5").estimatedError())
                .isGreaterThan(PolicyHarness.replay(recording, "taylorseer:2").estimatedError());
        for (String spec : new String[] {"fbcache:0.3", "teacache:0.1", "magcache:0.1,3", "deltadit:2,3", "pab:attn=2,mlp=3",
            "hicache:4", "taylorseer:4,2", "warmup:2,cooldown:2,taylorseer:5,2"}) {
            ReplayReport r = PolicyHarness.replay(recording, spec);
            assertThat(r.computeFraction()).as(spec).isLessThan(1.0);
            assertThat(r.estimatedError()).as(spec).isPositive().isLessThan(1.0);
            assertThat(r.leakedTensors()).as(spec).isZero();
            assertThat(r.nanos()).as(spec).isLessThan(5_000_000_000L);
        }
        assertThatThrownBy(() -> PolicyHarness.replay(recording, "mask:101")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("3 entries but the generation has 30 steps");
    }

    @Test
    void eachDecisionSeesTheRecordedMeasurements() {
        List<Double> seen = new ArrayList<>();
        List<Double> expected = new ArrayList<>();
        Measurement mi = Measurement.modulatedInputChange(0);
        CachePolicy probe = new CachePolicy() {
            int created;

            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                int image = created++;
                return new CacheDecider() {
                    @Override
                    public Decision decide(StepContext ctx) {
                        if (ctx.block() == 0 && ctx.branchIndex() == 0 && image == 1) {
                            seen.add(ctx.measurement(mi).orElse(-1));
                            expected.add(ctx.step().step() == 0 ? -1 : recording.modulatedInputChange(ctx.step().step(), 1, 0));
                        }
                        return Decision.COMPUTE;
                    }
                };
            }

            @Override
            public Set<Measurement> measurements(GenerationInfo info) {
                return Set.of(mi);
            }

            @Override
            public int historyLength() {
                return 0;
            }
        };
        PolicyHarness.replay(recording, probe);
        assertThat(seen).hasSize(STEPS);
        for (int s = 0; s < STEPS; s++) {
            assertThat(seen.get(s)).as("step %d", s).isCloseTo(expected.get(s), within(1e-9));
        }
    }
}
