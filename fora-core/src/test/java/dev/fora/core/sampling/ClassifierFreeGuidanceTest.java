package dev.fora.core.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.fora.core.model.ClassLabels;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ClassifierFreeGuidanceTest {

    private static final ClassLabels NULL = ClassLabels.of(1000);

    private final ArrayOps ops = new ArrayOps();
    private final List<int[]> seenLabels = new ArrayList<>();
    private final List<float[]> seenInputs = new ArrayList<>();

    /** Output [B, 8, 1, 1]: channel ch of a conditional row is 10 + ch, of an unconditional row ch. */
    private final DenoisingModel<ArrayTensor> inner = (step, x, conditioning) -> {
        int[] labels = ((ClassLabels) conditioning).labels();
        seenLabels.add(labels);
        seenInputs.add(ops.toFloats(x));
        float[] out = new float[labels.length * 8];
        for (int n = 0; n < labels.length; n++) {
            for (int ch = 0; ch < 8; ch++) {
                out[n * 8 + ch] = (labels[n] == 1000 ? 0 : 10) + ch;
            }
        }
        return ops.fromFloats(new long[] {labels.length, 8, 1, 1}, out);
    };

    private final SamplingStep step = new SamplingStep(0, 10, 999);

    private ArrayTensor x() {
        return ops.fromFloats(new long[] {2, 4, 1, 1}, new float[] {1, 2, 3, 4, 5, 6, 7, 8});
    }

    @Test
    void guidesAllEpsChannelsOnOneBatchedPassAndTakesVFromTheCondHalf() {
        ClassifierFreeGuidance<ArrayTensor> cfg = new ClassifierFreeGuidance<>(ops, inner, 1.5, NULL);
        float[] out = ops.toFloats(cfg.predict(step, x(), ClassLabels.of(7, 9)));
        assertThat(seenLabels).hasSize(1);
        assertThat(seenLabels.get(0)).containsExactly(7, 9, 1000, 1000);
        assertThat(seenInputs.get(0)).containsExactly(1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8);
        assertThat(out).hasSize(16);
        for (int n = 0; n < 2; n++) {
            for (int ch = 0; ch < 4; ch++) {
                double u = ch;
                double c = 10 + ch;
                assertThat((double) out[n * 8 + ch]).isCloseTo(u + 1.5 * (c - u), within(1e-6));
            }
            for (int ch = 4; ch < 8; ch++) {
                assertThat(out[n * 8 + ch]).isEqualTo(10f + ch);
            }
        }
    }

    @Test
    void ditQuirkGuidesOnlyTheFirstThreeChannels() {
        ClassifierFreeGuidance<ArrayTensor> cfg = new ClassifierFreeGuidance<>(ops, inner, 4.0, NULL, 3);
        float[] out = ops.toFloats(cfg.predict(step, x(), ClassLabels.of(1, 2)));
        assertThat(out[0]).isEqualTo(0 + 4f * 10);
        assertThat(out[2]).isEqualTo(2 + 4f * 10);
        assertThat(out[3]).isEqualTo(13f);
        assertThat(out[7]).isEqualTo(17f);
    }

    @Test
    void scaleOneRunsThePlainBatchAndLeavesOnlyTheOutput() {
        ClassifierFreeGuidance<ArrayTensor> cfg = new ClassifierFreeGuidance<>(ops, inner, 1.0, NULL);
        ArrayTensor x = x();
        ArrayTensor out = cfg.predict(step, x, ClassLabels.of(3, 4));
        assertThat(seenLabels.get(0)).containsExactly(3, 4);
        assertThat(out.shape()).containsExactly(2, 8, 1, 1);
        ArrayTensor guided = new ClassifierFreeGuidance<>(ops, inner, 2.0, NULL).predict(step, x, ClassLabels.of(3, 4));
        assertThat(ops.liveTensors()).isEqualTo(3); // x, out, guided: every intermediate released
        guided.close();
        out.close();
        x.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void rejectsNegativeOrNonFiniteScalesAndAnUnconditionalValueOfMoreThanOneRow() {
        for (double bad : new double[] {-0.5, Double.NaN, Double.POSITIVE_INFINITY}) {
            assertThatThrownBy(() -> new ClassifierFreeGuidance<>(ops, inner, bad, NULL))
                    .as("scale %s", bad).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("finite and >= 0");
        }
        // 0 is allowed: the unconditional model
        assertThat(new ClassifierFreeGuidance<>(ops, inner, 0.0, NULL).scale()).isZero();
        assertThatThrownBy(() -> new ClassifierFreeGuidance<>(ops, inner, 1.5, ClassLabels.of(1000, 1000)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("one row");
    }
}
