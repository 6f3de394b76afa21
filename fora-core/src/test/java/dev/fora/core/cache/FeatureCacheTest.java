package dev.fora.core.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import org.junit.jupiter.api.Test;

class FeatureCacheTest {

    private final ArrayOps ops = new ArrayOps();

    private ArrayTensor feature(float value) {
        return ops.fromFloats(new long[] {2, 3, 4}, filled(24, value));
    }

    private static float[] filled(int n, float v) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, v);
        return a;
    }

    @Test
    void keepsOneEntryPerBlockAndBranchAndReleasesReplacedValuesAtOnce() {
        FeatureCache<ArrayTensor> cache = new FeatureCache<>(ops, 2, 1);
        ArrayTensor first = feature(1);
        assertThat(cache.store(0, 1, Branch.MLP, first)).isTrue();
        assertThat(cache.currentBytes()).isEqualTo(96);
        ArrayTensor second = feature(2);
        cache.store(3, 1, Branch.MLP, second);
        assertThat(first.isReleased()).isTrue();
        assertThat(cache.history(1, Branch.MLP)).containsExactly(second);
        assertThat(cache.computedSteps(1, Branch.MLP)).containsExactly(3);
        assertThat(cache.computedSteps(1, Branch.ATTENTION)).isEmpty();
        assertThat(cache.currentBytes()).isEqualTo(96);
        assertThat(cache.peakBytes()).isEqualTo(96);
        cache.store(3, 0, Branch.ATTENTION, feature(3));
        assertThat(cache.currentBytes()).isEqualTo(192);
        cache.close();
        assertThat(second.isReleased()).isTrue();
        assertThat(cache.currentBytes()).isZero();
        assertThat(cache.peakBytes()).isEqualTo(192);
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void historyKeepsTheLastKValuesMostRecentFirst() {
        FeatureCache<ArrayTensor> cache = new FeatureCache<>(ops, 1, 2);
        ArrayTensor a = feature(1);
        ArrayTensor b = feature(2);
        ArrayTensor c = feature(3);
        cache.store(0, 0, Branch.ATTENTION, a);
        cache.store(2, 0, Branch.ATTENTION, b);
        cache.store(5, 0, Branch.ATTENTION, c);
        assertThat(a.isReleased()).isTrue();
        assertThat(cache.history(0, Branch.ATTENTION)).containsExactly(c, b);
        assertThat(cache.computedSteps(0, Branch.ATTENTION)).containsExactly(5, 2);
        assertThat(cache.peakBytes()).isEqualTo(2 * 96);
        cache.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void zeroHistoryStoresNothingAndLeavesOwnershipWithTheCaller() {
        FeatureCache<ArrayTensor> cache = new FeatureCache<>(ops, 1, 0);
        ArrayTensor a = feature(1);
        assertThat(cache.store(0, 0, Branch.MLP, a)).isFalse();
        assertThat(cache.currentBytes()).isZero();
        cache.close();
        assertThat(a.isReleased()).isFalse();
    }

    @Test
    void misuseIsAnError() {
        FeatureCache<ArrayTensor> cache = new FeatureCache<>(ops, 1, 1);
        cache.store(4, 0, Branch.MLP, feature(1));
        assertThatThrownBy(() -> cache.store(4, 0, Branch.MLP, feature(1))).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("step 4");
        assertThatThrownBy(() -> cache.history(1, Branch.MLP)).isInstanceOf(IndexOutOfBoundsException.class);
        cache.close();
        cache.close();
        assertThatThrownBy(() -> cache.history(0, Branch.MLP)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed");
    }
}
