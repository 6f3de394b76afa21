package dev.fora.core.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.engine.Generation;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.testing.SyntheticDiT;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The sampler loop stops between steps when its thread is interrupted or its token cancelled,
 * and on a model output that holds NaN or infinity; each with a typed error naming the step,
 * releasing everything.
 */
class StoppingTest {

    private static final int K = 8;

    private final ArrayOps ops = new ArrayOps();
    private final long[] shape = {2, 3, 2, 2};
    private final DdimSampler sampler = new DdimSampler(DiffusionSchedule.linear(1000).respace(K));
    private final List<Integer> predicted = new ArrayList<>();

    @AfterEach
    void clearInterrupt() {
        Thread.interrupted();
    }

    /** eps = 0, and {@code onStep} runs inside the model call of that step. */
    private DenoisingModel<ArrayTensor> model(int atStep, Runnable onStep) {
        return (step, x, conditioning) -> {
            predicted.add(step.step());
            if (step.step() == atStep) {
                onStep.run();
            }
            return ops.fromFloats(x.shape(), new float[(int) x.size()]);
        };
    }

    private ArrayTensor sample(DenoisingModel<ArrayTensor> model, LoopControl control) {
        return sampler.sample(ops, model, shape, ClassLabels.of(0, 1), new SeededGaussianNoise(3), control);
    }

    @Test
    void anInterruptDuringAStepStopsTheLoopBeforeTheNext() {
        DenoisingModel<ArrayTensor> m = model(2, () -> Thread.currentThread().interrupt());
        assertThatThrownBy(() -> sample(m, LoopControl.DEFAULT))
                .isInstanceOfSatisfying(GenerationCancelledException.class, e -> {
                    assertThat(e.step()).isEqualTo(3);
                    assertThat(e.totalSteps()).isEqualTo(K);
                    assertThat(e.reason()).isEqualTo("the thread was interrupted");
                })
                .isInstanceOf(IllegalStateException.class)
                .hasMessage("generation cancelled before step 3 of 8: the thread was interrupted");
        assertThat(predicted).containsExactly(0, 1, 2);
        assertThat(ops.liveTensors()).isZero();
        // the interrupt status stays set for the caller's own blocking calls
        assertThat(Thread.currentThread().isInterrupted()).isTrue();
    }

    @Test
    void theOverloadsWithoutControlAreInterruptibleToo() {
        Thread.currentThread().interrupt();
        assertThatThrownBy(() -> sampler.sample(ops, model(-1, () -> { }), shape, ClassLabels.of(0, 1),
                new SeededGaussianNoise(3))).isInstanceOf(GenerationCancelledException.class)
                .hasMessageContaining("before step 0 of 8");
        assertThat(predicted).isEmpty();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void aCancelledTokenStopsTheLoopWithItsReason() {
        CancelToken token = new CancelToken();
        LoopControl control = LoopControl.DEFAULT.cancelledBy(token).onStep((step, total) -> {
            if (step == 4) {
                token.cancel("enough");
                token.cancel("too late: the first reason wins");
            }
        });
        assertThatThrownBy(() -> sample(model(-1, () -> { }), control))
                .isInstanceOf(GenerationCancelledException.class)
                .hasMessage("generation cancelled before step 5 of 8: enough");
        assertThat(predicted).containsExactly(0, 1, 2, 3, 4);
        assertThat(ops.liveTensors()).isZero();
        assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }

    @Test
    void aChildTokenIsCancelledWithItsParentButNotTheOtherWayRound() {
        CancelToken parent = new CancelToken();
        CancelToken child = parent.child();
        CancelToken sibling = parent.child();
        sibling.cancel("sibling only");
        assertThat(parent.isCancelled()).isFalse();
        assertThat(child.isCancelled()).isFalse();
        parent.cancel();
        assertThat(child.reason()).contains("cancelled through its CancelToken");
        assertThat(sibling.reason()).contains("sibling only");
        assertThatThrownBy(CancelToken.NONE::cancel).isInstanceOf(UnsupportedOperationException.class);
        assertThat(CancelToken.NONE.isCancelled()).isFalse();
    }

    @Test
    void aNonFiniteModelOutputStopsTheLoopNamingTheStepAndImage() {
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            predicted.clear();
            DenoisingModel<ArrayTensor> m = (step, x, conditioning) -> {
                predicted.add(step.step());
                float[] eps = new float[(int) x.size()];
                if (step.step() == 3) {
                    eps[eps.length - 1] = bad; // image 1
                }
                return ops.fromFloats(x.shape(), eps);
            };
            assertThatThrownBy(() -> sample(m, LoopControl.DEFAULT))
                    .isInstanceOfSatisfying(NonFiniteOutputException.class, e -> {
                        assertThat(e.step()).isEqualTo(3);
                        assertThat(e.row()).isEqualTo(1);
                    })
                    .hasMessageContaining("not finite (NaN or infinity) at step 3 of 8")
                    .hasMessageContaining("image 1");
            assertThat(predicted).containsExactly(0, 1, 2, 3);
            assertThat(ops.liveTensors()).isZero();
        }
    }

    @Test
    void theFiniteCheckCanBeTurnedOff() {
        DenoisingModel<ArrayTensor> nan = (step, x, conditioning) -> {
            float[] eps = new float[(int) x.size()];
            Arrays.fill(eps, Float.NaN);
            return ops.fromFloats(x.shape(), eps);
        };
        try (ArrayTensor out = sample(nan, LoopControl.DEFAULT.checkFinite(false))) {
            assertThat(ops.toFloats(out)).containsOnly(Float.NaN);
        }
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void aGenerationChecksItsOutputNamingImageAndHalf() {
        SyntheticDiT dit = new SyntheticDiT(ops, 5);
        DiTConfig c = dit.config();
        long[] rows = {4, c.inChannels(), c.inputSize(), c.inputSize()};
        float[] x = new float[(int) (rows[0] * rows[1] * rows[2] * rows[3])];
        x[x.length - 1] = Float.NaN; // row 3: image 1, unconditional half
        SamplingStep first = SamplingStep.of(DiffusionSchedule.linear(1000).respace(K), 0);
        ClassLabels labels = ClassLabels.of(1, 2, c.numClasses(), c.numClasses());
        try (Generation<ArrayTensor> g = Generation.builder(dit, CachePolicies.parse("fora:2")).steps(K).images(2)
                .guided(true).open(); ArrayTensor latent = ops.fromFloats(rows, x)) {
            assertThatThrownBy(() -> g.predict(first, latent, labels))
                    .isInstanceOf(NonFiniteOutputException.class)
                    .hasMessageContaining("at step 0 of 8")
                    .hasMessageContaining("image 1 (unconditional half)");
        }
        assertThat(ops.liveTensors()).isZero();
        try (Generation<ArrayTensor> g = Generation.builder(dit, CachePolicies.parse("fora:2")).steps(K).images(2)
                .guided(true).checkFinite(false).open(); ArrayTensor latent = ops.fromFloats(rows, x)) {
            g.predict(first, latent, labels).close();
        }
        assertThat(ops.liveTensors()).isZero();
    }
}
