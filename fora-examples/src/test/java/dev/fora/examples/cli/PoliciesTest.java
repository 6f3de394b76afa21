package dev.fora.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class PoliciesTest {

    @Test
    void splitsCommaListsAndRepeatedOptionsAfterNoneWithoutDuplicates() {
        assertThat(Policies.noneAnd(List.of("fora:2,fora:3", "fora:5,fora:2"))).containsOnlyKeys("none", "fora:2", "fora:3",
                "fora:5");
        assertThat(Policies.noneAnd(List.of("fora:2,fora:3", "fora:5")).keySet()).containsExactly("none", "fora:2", "fora:3",
                "fora:5");
    }

    @Test
    void keepsDecoratorCommasInsideTheirSpec() {
        assertThat(Policies.noneAnd(List.of("fora:2,warmup:2,fora:3,cooldown:1,warmup:2,fora:5,mask:101")).keySet())
                .containsExactly("none", "fora:2", "warmup:2,fora:3", "cooldown:1,warmup:2,fora:5", "mask:101");
    }

    @Test
    void badSpecIsAOneLineUsageError() {
        assertThatThrownBy(() -> Policies.parse("fora:zero"))
                .isInstanceOfSatisfying(CliException.class, e -> {
                    assertThat(e.exitCode()).isEqualTo(ExitCodes.USAGE);
                    assertThat(e.getMessage()).doesNotContain("\n").contains("fora:zero");
                });
    }

    @Test
    void repeatsLabelsPerClass() {
        assertThat(SamplingOptions.repeat(new int[] {0, 3}, 2)).containsExactly(0, 0, 3, 3);
    }
}
