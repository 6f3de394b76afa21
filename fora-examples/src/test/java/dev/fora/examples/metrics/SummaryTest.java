package dev.fora.examples.metrics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

class SummaryTest {

    @Test
    void quartilesInterpolateLikeNumpy() {
        Summary s = Summary.of(5, 1, 4, 2, 3);
        assertThat(s.median()).isEqualTo(3);
        assertThat(s.q1()).isEqualTo(2);
        assertThat(s.q3()).isEqualTo(4);
        assertThat(s.min()).isEqualTo(1);
        assertThat(s.max()).isEqualTo(5);
        assertThat(Summary.of(1, 2, 3, 4).median()).isCloseTo(2.5, within(1e-12));
        assertThat(Summary.of(1, 2, 3, 4).q1()).isCloseTo(1.75, within(1e-12));
        assertThat(Summary.of(7).iqr()).isZero();
    }
}
