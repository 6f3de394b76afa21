package dev.fora.core.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** The sampler names and what each makes: in the core, with no engine. */
class SamplerKindTest {

    private static final DiffusionSchedule TRAINING = DiffusionSchedule.linear(1000, 1e-4, 0.02);

    @Test
    void namesParseCaseInsensitivelyAndRoundTrip() {
        for (SamplerKind k : SamplerKind.values()) {
            assertThat(SamplerKind.parse(k.id())).isSameAs(k);
            assertThat(SamplerKind.parse(" " + k.id().toUpperCase(java.util.Locale.ROOT) + " ")).isSameAs(k);
            assertThat(k).hasToString(k.id());
        }
        assertThatThrownBy(() -> SamplerKind.parse("euler")).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("unknown sampler \"euler\"; expected ddim, ddpm, dpm-solver++ or dpms");
    }

    @Test
    void eachKindMakesItsSamplerOverTheTrainingSchedule() {
        assertThat(SamplerKind.DDIM.create(TRAINING, 20, true)).isInstanceOf(DdimSampler.class)
                .satisfies(s -> assertThat(s.clipDenoised()).isTrue()).satisfies(s -> assertThat(s.steps()).isEqualTo(20));
        assertThat(SamplerKind.DDPM.create(TRAINING, 10, false)).isInstanceOf(DdpmSampler.class)
                .satisfies(s -> assertThat(s.clipDenoised()).isFalse());
        assertThat(SamplerKind.DPM_SOLVER_PP.create(TRAINING, 7, false)).isInstanceOf(DpmSolverPlusPlusSampler.class)
                .satisfies(s -> assertThat(s.steps()).isEqualTo(7));
        DiffusionSampler dpms = SamplerKind.DPMS.create(TRAINING, 12, true);
        assertThat(dpms).isInstanceOf(TimeUniformDpmSolverSampler.class);
        assertThat(dpms.clipDenoised()).as("dpms never clips, as the official DPM-Solver").isFalse();
        assertThatThrownBy(() -> SamplerKind.DPMS.create(TRAINING.respace(12), false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("continuous time");
    }
}
