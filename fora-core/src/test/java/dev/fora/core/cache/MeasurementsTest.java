package dev.fora.core.cache;

import dev.fora.core.engine.Generation;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fora.core.model.ClassLabels;
import dev.fora.core.sampling.SamplingStep;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.testing.SyntheticDiT;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalDouble;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Declared measurements, per image and only when declared, and the decider lifecycle. */
class MeasurementsTest {

    private static final int K = 4;

    private final ArrayOps ops = new ArrayOps();
    private final RecordingDiT model = new RecordingDiT(new SyntheticDiT(ops, 11));

    /** A policy that computes everything, declares {@code measured} and records what each decider saw. */
    private static final class Probe implements CachePolicy {
        final Set<Measurement> measured;
        final List<List<String>> events = new ArrayList<>();
        final Measurement read;
        final int readAtBlock;

        Probe(Set<Measurement> measured, Measurement read, int readAtBlock) {
            this.measured = measured;
            this.read = read;
            this.readAtBlock = readAtBlock;
        }

        @Override
        public CacheDecider newDecider(GenerationInfo info) {
            List<String> log = new ArrayList<>();
            events.add(log);
            return new CacheDecider() {
                @Override
                public void beginStep(SamplingStep step) {
                    log.add("begin " + step.step());
                }

                @Override
                public Decision decide(StepContext ctx) {
                    if (read != null && ctx.block() == readAtBlock && ctx.branchIndex() == 0) {
                        OptionalDouble v = ctx.measurement(read);
                        log.add("read " + (v.isPresent() ? String.format(java.util.Locale.ROOT, "%.9f", v.getAsDouble()) : "-"));
                    }
                    return Decision.COMPUTE;
                }

                @Override
                public void computed(StepContext ctx, double change) {
                    if (ctx.block() == 0 && ctx.branchIndex() == 0) {
                        log.add("changed " + (change > 0 && Double.isFinite(change)));
                    }
                }

                @Override
                public void endStep(StepContext ctx) {
                    log.add("end " + ctx.step().step());
                }
            };
        }

        @Override
        public Set<Measurement> measurements(GenerationInfo info) {
            return measured;
        }
    }

    /** Runs K steps on images with seeds {@code seeds} (a latent per image, label = seed % 10). */
    private Generation<ArrayTensor> run(CachePolicy policy, long... seeds) {
        int n = seeds.length;
        float[] data = new float[n * 256];
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            System.arraycopy(new SeededGaussianNoise(seeds[i]).next(new long[] {256}), 0, data, i * 256, 256);
            labels[i] = (int) (seeds[i] % 10);
        }
        Generation<ArrayTensor> g = Generation.builder(model, policy).steps(K).images(n).open();
        try (ArrayTensor x = ops.fromFloats(new long[] {n, 4, 8, 8}, data)) {
            for (int step = 0; step < K; step++) {
                g.predict(new SamplingStep(step, K, 900 - 250 * step), x, ClassLabels.of(labels)).close();
            }
        }
        return g;
    }

    @Test
    void nothingIsMeasuredThatNoPolicyAskedFor() {
        Probe probe = new Probe(Set.of(), null, 0);
        try (Generation<ArrayTensor> g = run(probe, 1, 2)) {
            assertThat(model.modulatedInputCalls).isEmpty();
            // no measurement references: the cache holds the features only
            assertThat(g.peakCacheBytes()).isEqualTo(model.config().features() * 2L * model.config().featureBytesPerRow());
            assertThat(probe.events.get(0)).noneMatch(e -> e.startsWith("changed"));
        }
        CachePolicy reader = info -> ctx -> {
            ctx.measurement(Measurement.modulatedInputChange(0));
            return Decision.COMPUTE;
        };
        assertThatThrownBy(() -> run(reader, 1)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("was not declared");
    }

    @Test
    void theModulatedInputChangeIsMeasuredOnceAStepAtItsBlockPerImage() {
        Measurement m = Measurement.modulatedInputChange(2);
        Probe probe = new Probe(Set.of(m), m, 3);
        try (Generation<ArrayTensor> g = run(probe, 1, 2)) {
            assertThat(model.modulatedInputCalls).containsExactly(2, 2, 2, 2);
            List<String> first = probe.events.get(0);
            assertThat(first).filteredOn(e -> e.startsWith("read")).hasSize(K).first().isEqualTo("read -");
            assertThat(first.get(first.indexOf("begin 1") + 1)).matches("read 0\\.\\d+");
            assertThat(probe.events.get(0)).isNotEqualTo(probe.events.get(1));
            assertThat(g.peakCacheBytes()).isGreaterThan(model.config().features() * 2L * model.config().featureBytesPerRow());
        }
        // an image's values do not depend on the rest of the batch
        Probe alone = new Probe(Set.of(m), m, 3);
        run(alone, 2).close();
        assertThat(alone.events.get(0)).isEqualTo(probe.events.get(1));
        // before its block it cannot be read
        Probe early = new Probe(Set.of(m), m, 1);
        assertThatThrownBy(() -> run(early, 1)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("not available when deciding block 1");
    }

    @Test
    void theResidualChangeOfABlockIsReadableFromTheNextBlock() {
        Measurement m = Measurement.residualChange(1);
        Probe probe = new Probe(Set.of(m), m, 2);
        run(probe, 3, 4).close();
        assertThat(probe.events.get(0)).filteredOn(e -> e.startsWith("read")).hasSize(K)
                .satisfies(reads -> assertThat(reads.subList(1, K)).allMatch(r -> r.matches("read \\d+\\.\\d+")));
        Probe alone = new Probe(Set.of(m), m, 2);
        run(alone, 4).close();
        assertThat(alone.events.get(0)).isEqualTo(probe.events.get(1));
        assertThatThrownBy(() -> run(new Probe(Set.of(m), m, 1), 3)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("not available when deciding block 1");
        assertThatThrownBy(() -> run(new Probe(Set.of(Measurement.residualChange(6)), null, 0), 3))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("blocks 0..5");
    }

    @Test
    void decidersSeeStepsBeginAndEndAndHowMuchEachComputeChanged() {
        Probe probe = new Probe(Set.of(Measurement.computedChange()), null, 0);
        run(probe, 5, 6).close();
        // no previous value at step 0, so no change; afterwards one per compute of (block 0, attn)
        assertThat(probe.events.get(0)).containsExactly("begin 0", "end 0", "begin 1", "changed true", "end 1",
                "begin 2", "changed true", "end 2", "begin 3", "changed true", "end 3");
        assertThat(probe.events).hasSize(2);
    }

    @Test
    void decoratorsForwardTheLifecycle() {
        Probe probe = new Probe(Set.of(Measurement.computedChange()), null, 0);
        run(WarmupCooldown.warmup(2, probe), 5).close();
        assertThat(probe.events.get(0)).containsExactly("begin 0", "end 0", "begin 1", "changed true", "end 1",
                "begin 2", "changed true", "end 2", "begin 3", "changed true", "end 3");
    }
}
