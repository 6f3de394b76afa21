package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.sampling.ReplayNoise;
import java.util.List;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Bad requests fail with a typed error that says what is wrong, and leave no native array behind. */
class BadGenerationInputTest {

    private DiTPipeline p;
    private int before;
    private NDManager mine;

    @BeforeEach
    void setUp() throws Exception {
        p = TestModels.pipeline();
        before = p.manager().getManagedArrays().size();
        mine = NDManager.newBaseManager();
    }

    @AfterEach
    void nothingLeaked() {
        mine.close();
        assertThat(p.manager().getManagedArrays()).as("arrays left under the model").hasSize(before);
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
        try (DjlGenerationSession s = p.openSession(CachePolicies.parse("fora:3"), 5)) {
            // the null class is allowed in a batch you guide yourself, but not as a class to guide towards
            fails(() -> s.predictGuided(0, latent(1), 999, new int[] {10}, 1.5), IllegalArgumentException.class,
                    "label 10");
            fails(() -> s.predict(0, latent(1), 999, new int[] {11}), IllegalArgumentException.class, "label 11");
            assertThat(s.nextStep()).isZero();
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
        try (DjlGenerationSession s = p.openSession(CachePolicies.parse("none"), 5)) {
            NDArray small = mine.zeros(new Shape(1, c.inChannels(), c.inputSize() / 2, c.inputSize() / 2));
            fails(() -> s.predict(0, small, 999, new int[] {1}), IllegalArgumentException.class,
                    "does not match the model");
            fails(() -> s.predict(0, latent(2), 999, new int[] {1}), IllegalArgumentException.class,
                    "does not match the model");
            // rejected input does not use up the step
            assertThat(s.nextStep()).isZero();
            s.predict(0, latent(1), 999, new int[] {1}).close();
            assertThat(s.nextStep()).isEqualTo(1);
        }
    }

    @Test
    void closedSessionReused() {
        DjlGenerationSession s = p.openSession(CachePolicies.parse("fora:3"), 5);
        NDArray out = s.predictGuided(0, latent(1), 999, new int[] {1}, 1.5);
        out.close();
        s.close();
        s.close(); // idempotent
        fails(() -> s.predictGuided(1, latent(1), 979, new int[] {1}, 1.5), IllegalStateException.class,
                "session is closed");
        assertThat(s.cacheBytes()).isZero();
    }

    @Test
    void stepsOutOfOrder() {
        try (DjlGenerationSession s = p.openSession(CachePolicies.parse("fora:3"), 5)) {
            fails(() -> s.predict(1, latent(1), 999, new int[] {1}), IllegalStateException.class, "has not run");
            s.predict(0, latent(1), 999, new int[] {1}).close();
            fails(() -> s.predict(0, latent(1), 999, new int[] {1}), IllegalStateException.class, "already run");
        }
    }

    @Test
    void closedPipeline() throws Exception {
        DiTPipeline own = DiTPipeline.load(TestModels.modelDir());
        own.close();
        fails(() -> own.generate(GenerationRequest.builder(1).steps(3).build()), IllegalStateException.class, "is closed");
        fails(() -> own.openSession(CachePolicies.parse("none"), 3), IllegalStateException.class, "is closed");
    }
}
