package dev.fora.core.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fora.core.model.DiTConfig;
import dev.fora.core.sampling.SamplingStep;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class StaticIntervalPolicyTest {

    private static final DiTConfig CONFIG = DiTConfig.classConditional(8, 4, 2, 32, 4, 4, 10, true);

    /** Step {@code step} of {@code k}; the timestep does not matter to FORA's rule. */
    private static SamplingStep step(int step, int k) {
        return new SamplingStep(step, k, 1000.0 * (k - 1 - step) / k);
    }

    private static int fullSteps(CachePolicy policy, int k) {
        CacheDecider decider = policy.newDecider(new GenerationInfo(k, CONFIG, 1, false, 1));
        int full = 0;
        for (int step = 0; step < k; step++) {
            if (Contexts.ask(decider, step, k, 0, 0).kind() == Decision.Kind.COMPUTE) {
                full++;
            }
        }
        return full;
    }

    @ParameterizedTest(name = "K={0}, N={1} -> {2} full steps")
    @CsvSource({"50,3,18", "50,5,11", "50,2,26", "250,3,84", "20,3,8", "50,1,50"})
    void foraFullStepCountsMatchThePaper(int k, int n, int expected) {
        assertThat(fullSteps(new StaticIntervalPolicy(n), k)).isEqualTo(expected);
    }

    @Test
    void fullStepsAreTheFirstAndEveryNthCountingDownFromKMinus1() {
        // K = 10, N = 3: loop indices 9 (first), 6, 3, 0 -> steps 0, 3, 6, 9
        StaticIntervalPolicy fora = new StaticIntervalPolicy(3);
        StringBuilder pattern = new StringBuilder();
        for (int step = 0; step < 10; step++) {
            pattern.append(fora.isFullStep(step(step, 10)) ? '1' : '0');
        }
        assertThat(pattern).hasToString("1001001001");
        // K = 11, N = 3: loop index 10 first (full), then 9, 6, 3, 0 -> steps 0, 1, 4, 7, 10
        pattern.setLength(0);
        for (int step = 0; step < 11; step++) {
            pattern.append(fora.isFullStep(step(step, 11)) ? '1' : '0');
        }
        assertThat(pattern).hasToString("11001001001");
    }

    @Test
    void firstStepIsAlwaysFullAndNoFeatureIsReusedBeforeItIsComputed() {
        for (int k = 1; k <= 120; k++) {
            for (int n = 1; n <= 12; n++) {
                StaticIntervalPolicy fora = new StaticIntervalPolicy(n);
                assertThat(fora.isFullStep(step(0, k))).as("K=%d N=%d", k, n).isTrue();
                CacheDecider decider = fora.newDecider(new GenerationInfo(k, CONFIG, 1, false, 1));
                boolean computed = false;
                for (int step = 0; step < k; step++) {
                    for (int branch = 0; branch < CONFIG.branches(); branch++) {
                        Decision d = Contexts.ask(decider, step, k, 3, branch);
                        assertThat(d.kind() == Decision.Kind.COMPUTE || computed).as("K=%d N=%d step %d", k, n, step).isTrue();
                        computed |= d.kind() == Decision.Kind.COMPUTE;
                    }
                }
            }
        }
    }

    @Test
    void rejectsIntervalBelowOne() {
        assertThatThrownBy(() -> new StaticIntervalPolicy(0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(">= 1");
    }
}
