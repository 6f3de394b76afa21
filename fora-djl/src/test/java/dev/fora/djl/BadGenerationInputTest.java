package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.sampling.ReplayNoise;
import dev.fora.core.sampling.SamplingStep;
import java.util.List;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Bad requests fail with a typed error that says what is wrong, and leave no native array behind. */
class BadGenerationInputTest extends LeakCheckedPipelineTest {

    private static final SamplingStep FIRST = new SamplingStep(0, 5, 999);

    private NDManager mine;

    @BeforeEach
    void openOwnManager() {
        mine = NDManager.newBaseManager();
    }

    /** Runs before the base class's leak check. */
    @AfterEach
    void closeOwnManager() {
        mine.close();
    }

    private NDArray latent(int n) {
        var c = p.config();
        return mine.zeros(new Shape(n, c.inChannels(), c.inputSize(), c.inputSize()));
    }

    private static void fails(ThrowingCallable call, Class<? extends Throwable> type, String message) {
        assertThatThrownBy(call).isInstanceOf(type).hasMessageContaining(message);
    }

    @Test
    void labelOutOfRange() {
        fails(() -> p.generate(GenerationRequest.builder(0, 10).steps(3).build()), IllegalArgumentException.class,
                "label 10 at position 1 is out of range");
        fails(() -> p.generate(GenerationRequest.builder(-1).steps(3).build()), IllegalArgumentException.class,
                "label -1");
        try (DjlGeneration s = p.openGeneration(CachePolicies.parse("fora:3"), 5, 1, true)) {
            // the null class is not a class to guide towards
            fails(() -> s.predictGuided(FIRST, latent(1), ClassLabels.of(10), 1.5), IllegalArgumentException.class,
                    "label 10");
            assertThat(s.nextStep()).isZero();
        }
        try (DjlGeneration s = p.openGeneration(CachePolicies.parse("fora:3"), 5, 1, false)) {
            // but allowed in a batch you guide yourself
            fails(() -> s.predict(FIRST, latent(1), ClassLabels.of(11)), IllegalArgumentException.class, "label 11");
            s.predict(FIRST, latent(1), ClassLabels.of(10)).close();
            assertThat(s.nextStep()).isEqualTo(1);
        }
    }

    @Test
    void wrongNoiseShape() {
        var c = p.config();
        int wrong = c.inChannels() * c.inputSize() * c.inputSize() - 1;
        fails(() -> p.generate(GenerationRequest.builder(1).steps(3).noise(shape -> new float[wrong]).build()),
                IllegalArgumentException.class, "the noise source returned " + wrong + " values");
        fails(() -> p.generate(GenerationRequest.builder(1).steps(3).noise(new ReplayNoise(List.of(new float[wrong])))
                .build()), IllegalArgumentException.class, "wrong size of recorded draw 0: expected " + (wrong + 1)
                + " values for a draw of shape [1, " + c.inChannels() + ", " + c.inputSize() + ", " + c.inputSize()
                + "], recorded " + wrong);
        try (DjlGeneration s = p.openGeneration(CachePolicies.parse("none"), 5, 1, false)) {
            NDArray small = mine.zeros(new Shape(1, c.inChannels(), c.inputSize() / 2, c.inputSize() / 2));
            fails(() -> s.predict(FIRST, small, ClassLabels.of(1)), IllegalArgumentException.class,
                    "does not match the model");
            fails(() -> s.predict(FIRST, latent(2), ClassLabels.of(1)), IllegalArgumentException.class,
                    "does not match the model");
            // a batch other than the one the generation was opened for
            fails(() -> s.predict(FIRST, latent(2), ClassLabels.of(1, 2)), IllegalArgumentException.class,
                    "does not fit this generation");
            // rejected input does not use up the step
            assertThat(s.nextStep()).isZero();
            s.predict(FIRST, latent(1), ClassLabels.of(1)).close();
            assertThat(s.nextStep()).isEqualTo(1);
        }
    }

    @Test
    void closedGenerationReused() {
        DjlGeneration s = p.openGeneration(CachePolicies.parse("fora:3"), 5, 1, true);
        NDArray out = s.predictGuided(FIRST, latent(1), ClassLabels.of(1), 1.5);
        out.close();
        s.close();
        s.close(); // idempotent
        fails(() -> s.predictGuided(new SamplingStep(1, 5, 979), latent(1), ClassLabels.of(1), 1.5),
                IllegalStateException.class, "generation is closed");
        assertThat(s.cacheBytes()).isZero();
    }

    @Test
    void guidedAndUnguidedCallsMustMatchTheGeneration() {
        try (DjlGeneration s = p.openGeneration(CachePolicies.parse("fora:3"), 5, 1, true)) {
            fails(() -> s.predict(FIRST, latent(1), ClassLabels.of(1)), IllegalStateException.class, "predictGuided");
            fails(() -> s.predictGuided(FIRST, latent(1), ClassLabels.of(1), 1.0), IllegalArgumentException.class,
                    "guided = false");
            fails(() -> s.predictGuided(FIRST, latent(1), ClassLabels.of(1), -1), IllegalArgumentException.class,
                    ">= 0");
            assertThat(s.nextStep()).isZero();
        }
        fails(() -> p.openGeneration(null, 5, 1, true), NullPointerException.class, "policy");
    }

    @Test
    void stepsOutOfOrder() {
        try (DjlGeneration s = p.openGeneration(CachePolicies.parse("fora:3"), 5, 1, false)) {
            fails(() -> s.predict(new SamplingStep(1, 5, 979), latent(1), ClassLabels.of(1)), IllegalStateException.class,
                    "has not run");
            s.predict(FIRST, latent(1), ClassLabels.of(1)).close();
            fails(() -> s.predict(FIRST, latent(1), ClassLabels.of(1)), IllegalStateException.class, "already run");
        }
    }

    @Test
    void timestepOutsideTheTrainingSchedule() {
        try (DjlGeneration s = p.openGeneration(CachePolicies.parse("none"), 5, 1, false)) {
            for (double t : new double[] {1000, 5000, -3, -0.5, Double.NaN, Double.POSITIVE_INFINITY}) {
                fails(() -> s.predict(new SamplingStep(0, 5, t), latent(1), ClassLabels.of(1)), IllegalArgumentException.class,
                        "timestep " + t + " of step 0 is outside the model's training schedule [0, 1000)");
            }
            assertThat(s.nextStep()).isZero();
            s.predict(new SamplingStep(0, 5, 999), latent(1), ClassLabels.of(1)).close();
            s.predict(new SamplingStep(1, 5, 0), latent(1), ClassLabels.of(1)).close();
            assertThat(s.nextStep()).isEqualTo(2);
        }
    }

    @Test
    void closedPipeline() throws Exception {
        DiTPipeline own = DiTPipeline.load(TestModels.modelDir());
        own.close();
        fails(() -> own.generate(GenerationRequest.builder(1).steps(3).build()), IllegalStateException.class, "is closed");
        fails(() -> own.openGeneration(CachePolicies.parse("none"), 3, 1, false), IllegalStateException.class, "is closed");
    }
}
