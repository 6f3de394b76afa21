package dev.fora.djl;

import static dev.fora.djl.Goldens.maxAbsDiff;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.cache.CacheDecider;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.Decision;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.cache.Measurement;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.Modulation;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalDouble;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The parts of the core SPI beyond FORA's reuse run on DJL too: measurements and forecasts. */
class PolicySignalsOnDjlTest {

    @Test
    void modulatedInputIsLayerNormThenModulate() throws Exception {
        DiTPipeline p = TestModels.pipeline();
        var c = p.config();
        try (TorchScriptDiT dit = p.newDiT()) {
            NDArrayOps ops = dit.ops();
            int n = 2;
            float[] xs = new dev.fora.core.sampling.SeededGaussianNoise(9).next(
                    new long[] {n, c.inChannels(), c.inputSize(), c.inputSize()});
            NDTensor x = ops.fromFloats(new long[] {n, c.inChannels(), c.inputSize(), c.inputSize()}, xs);
            Embedding<NDTensor> e = dit.embed(x, new float[] {500f, 500f}, ClassLabels.of(1, c.numClasses()));
            Modulation<NDTensor> m = dit.modulations(e).get(0);
            float[] got = ops.toFloats(dit.modulatedInput(0, e.tokens(), m));
            float[] h = ops.toFloats(e.tokens());
            float[] shift = ops.toFloats(m.vector(0));
            float[] scale = ops.toFloats(m.vector(1));
            int t = c.tokens();
            int d = c.hiddenSize();
            float[] want = new float[h.length];
            for (int s = 0; s < n; s++) {
                for (int k = 0; k < t; k++) {
                    int base = (s * t + k) * d;
                    double mean = 0;
                    for (int j = 0; j < d; j++) {
                        mean += h[base + j];
                    }
                    mean /= d;
                    double var = 0;
                    for (int j = 0; j < d; j++) {
                        var += (h[base + j] - mean) * (h[base + j] - mean);
                    }
                    var /= d;
                    for (int j = 0; j < d; j++) {
                        double normed = (h[base + j] - mean) / Math.sqrt(var + 1e-6);
                        want[base + j] = (float) (normed * (1 + scale[s * d + j]) + shift[s * d + j]);
                    }
                }
            }
            assertThat(maxAbsDiff(got, want)).isLessThan(1e-4);
        }
    }

    @Test
    void measurementsAreTakenOnNdArrays() throws Exception {
        DiTPipeline p = TestModels.pipeline();
        List<Double> modulated = new ArrayList<>();
        List<Double> residual = new ArrayList<>();
        CachePolicy measuring = new CachePolicy() {
            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                return ctx -> {
                    if (ctx.block() == 1 && ctx.branchIndex() == 0) {
                        OptionalDouble a = ctx.measurement(Measurement.modulatedInputChange(0));
                        OptionalDouble b = ctx.measurement(Measurement.residualChange(0));
                        a.ifPresent(modulated::add);
                        b.ifPresent(residual::add);
                    }
                    return Decision.COMPUTE;
                };
            }

            @Override
            public Set<Measurement> measurements(GenerationInfo info) {
                return Set.of(Measurement.modulatedInputChange(0), Measurement.residualChange(0));
            }
        };
        int before = p.manager().getManagedArrays().size();
        GeneratedImages g = p.generate(GenerationRequest.builder(4).steps(10).policy(measuring).build());
        GeneratedImages plain = p.generate(GenerationRequest.builder(4).steps(10).policy("none").build());
        assertThat(modulated).hasSize(9).allSatisfy(v -> assertThat(v).isPositive().isFinite());
        assertThat(residual).hasSize(9).allSatisfy(v -> assertThat(v).isPositive().isFinite());
        assertThat(g.data()).containsExactly(plain.data());
        assertThat(p.manager().getManagedArrays()).hasSize(before);
    }

    @Test
    void taylorSeerForecastsRunOnNdArrays() throws Exception {
        DiTPipeline p = TestModels.pipeline();
        var c = p.config();
        GeneratedImages taylor = p.generate(GenerationRequest.builder(2).steps(20).policy("taylorseer:3").build());
        GeneratedImages fora = p.generate(GenerationRequest.builder(2).steps(20).policy("fora:3").build());
        GeneratedImages none = p.generate(GenerationRequest.builder(2).steps(20).policy("none").build());
        assertThat(taylor.calls().branchCalls()).isEqualTo(fora.calls().branchCalls());
        assertThat(taylor.calls().totalBranchRows()).isEqualTo(fora.calls().totalBranchRows());
        assertThat(taylor.stats().count(Decision.Kind.FORECAST)).isPositive();
        long entry = 2L * c.tokens() * c.hiddenSize() * 4;
        assertThat(taylor.stats().peakCacheBytes()).isEqualTo(2 * 2L * c.depth() * entry); // two values per feature
        System.out.printf("20 steps, max abs diff to uncached: fora:3 %.3g, taylorseer:3 %.3g%n",
                maxAbsDiff(fora.data(), none.data()), maxAbsDiff(taylor.data(), none.data()));
    }
}
