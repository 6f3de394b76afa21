package dev.fora.core.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class FeatureCacheTest {

    private final ArrayOps ops = new ArrayOps();

    /** A whole-batch feature of 2 rows (one per image), 96 bytes. */
    private ArrayTensor feature(float value) {
        return ops.fromFloats(new long[] {2, 3, 4}, filled(24, value));
    }

    private static float[] filled(int n, float v) {
        float[] a = new float[n];
        Arrays.fill(a, v);
        return a;
    }

    /** Rows of one value each, {@code [values.length, 2]}: 8 bytes a row. */
    private ArrayTensor rows(float... values) {
        float[] data = new float[2 * values.length];
        for (int r = 0; r < values.length; r++) {
            data[2 * r] = values[r];
            data[2 * r + 1] = values[r];
        }
        return ops.fromFloats(new long[] {values.length, 2}, data);
    }

    /** The value of each row of a {@link #rows} tensor. */
    private float[] values(ArrayTensor t) {
        float[] data = ops.toFloats(t);
        float[] out = new float[data.length / 2];
        for (int r = 0; r < out.length; r++) {
            assertThat(data[2 * r + 1]).isEqualTo(data[2 * r]);
            out[r] = data[2 * r];
        }
        return out;
    }

    @Test
    void keepsOneEntryPerFeatureAndReleasesReplacedValuesAtOnce() {
        FeatureCache<ArrayTensor> cache = new FeatureCache<>(ops, 2, 1, 2, 2);
        ArrayTensor first = feature(1);
        assertThat(cache.storeAll(1, 0, first)).isTrue();
        assertThat(cache.currentBytes()).isEqualTo(96);
        ArrayTensor second = feature(2);
        assertThat(cache.storeAll(1, 3, second)).isTrue();
        assertThat(first.isReleased()).isTrue();
        assertThat(cache.slot(1, 0)).isSameAs(second);
        for (int unit = 0; unit < 2; unit++) {
            assertThat(cache.computedSteps(1, unit)).containsExactly(3);
            assertThat(cache.count(1, unit)).isEqualTo(1);
            assertThat(cache.computedSteps(0, unit)).isEmpty();
            assertThat(cache.count(0, unit)).isZero();
        }
        assertThat(cache.slot(0, 0)).isNull();
        assertThat(cache.currentBytes()).isEqualTo(96);
        assertThat(cache.peakBytes()).isEqualTo(96);
        cache.storeAll(0, 3, feature(3));
        assertThat(cache.currentBytes()).isEqualTo(192);
        cache.close();
        assertThat(cache.isClosed()).isTrue();
        assertThat(second.isReleased()).isTrue();
        assertThat(cache.currentBytes()).isZero();
        assertThat(cache.peakBytes()).isEqualTo(192);
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void historyKeepsTheLastKValuesMostRecentFirst() {
        FeatureCache<ArrayTensor> cache = new FeatureCache<>(ops, 1, 2, 2, 2);
        ArrayTensor a = feature(1);
        ArrayTensor b = feature(2);
        ArrayTensor c = feature(3);
        cache.storeAll(0, 0, a);
        cache.storeAll(0, 2, b);
        cache.storeAll(0, 5, c);
        assertThat(a.isReleased()).isTrue();
        assertThat(cache.slot(0, 0)).isSameAs(c);
        assertThat(cache.slot(0, 1)).isSameAs(b);
        for (int unit = 0; unit < 2; unit++) {
            assertThat(cache.computedSteps(0, unit)).containsExactly(5, 2);
        }
        assertThat(cache.peakBytes()).isEqualTo(2 * 96);
        cache.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void zeroHistoryStoresNothingAndLeavesOwnershipWithTheCaller() {
        FeatureCache<ArrayTensor> cache = new FeatureCache<>(ops, 1, 0, 2, 2);
        ArrayTensor a = feature(1);
        assertThat(cache.storeAll(0, 0, a)).isFalse();
        ArrayTensor some = rows(5);
        cache.storeSome(0, 1, new int[] {1}, new int[] {1}, some);
        assertThat(cache.computedSteps(0, 1)).isEmpty();
        assertThat(cache.currentBytes()).isZero();
        cache.close();
        assertThat(a.isReleased()).isFalse();
        assertThat(some.isReleased()).isFalse();
        a.close();
        some.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void storeSomeKeepsEachUnitsOwnHistory() {
        // three unguided images (unit u = row u), two values each; they compute at different steps
        FeatureCache<ArrayTensor> cache = new FeatureCache<>(ops, 1, 2, 3, 3);
        assertThat(cache.storeAll(0, 0, rows(10, 11, 12))).isTrue();
        // step 1: images 0 and 2 compute
        ArrayTensor step1 = rows(20, 22);
        cache.storeSome(0, 1, new int[] {0, 2}, new int[] {0, 2}, step1);
        assertThat(step1.isReleased()).isFalse(); // the caller keeps it
        assertThat(cache.slot(0, 0)).isNotSameAs(step1);
        step1.close();
        assertThat(cache.computedSteps(0, 0)).containsExactly(1, 0);
        assertThat(cache.computedSteps(0, 1)).containsExactly(0);
        assertThat(cache.computedSteps(0, 2)).containsExactly(1, 0);
        assertThat(values(cache.slot(0, 0))).containsExactly(20, 11, 22);
        assertThat(values(cache.slot(0, 1))[0]).isEqualTo(10);
        assertThat(values(cache.slot(0, 1))[2]).isEqualTo(12);
        // step 2: image 1 computes
        try (ArrayTensor step2 = rows(31)) {
            cache.storeSome(0, 2, new int[] {1}, new int[] {1}, step2);
        }
        // step 3: image 0 computes; its oldest value (step 0) drops out, the others keep theirs
        try (ArrayTensor step3 = rows(40)) {
            cache.storeSome(0, 3, new int[] {0}, new int[] {0}, step3);
        }
        assertThat(cache.computedSteps(0, 0)).containsExactly(3, 1);
        assertThat(cache.computedSteps(0, 1)).containsExactly(2, 0);
        assertThat(cache.computedSteps(0, 2)).containsExactly(1, 0);
        // slot j holds, in each image's row, that image's j-th most recent value
        assertThat(values(cache.slot(0, 0))).containsExactly(40, 31, 22);
        assertThat(values(cache.slot(0, 1))).containsExactly(20, 11, 12);
        // two whole-batch slots of 3 rows x 8 bytes, nothing else
        assertThat(cache.currentBytes()).isEqualTo(2 * 24);
        // a slot is released before its replacement is counted, so the cache never holds more than its worst case
        assertThat(cache.peakBytes()).isEqualTo(2 * 24);
        assertThat(ops.liveTensors()).isEqualTo(2);
        // a later step where every image computes shifts the whole slots
        cache.storeAll(0, 4, rows(50, 51, 52));
        assertThat(values(cache.slot(0, 1))).containsExactly(40, 31, 22);
        assertThat(cache.computedSteps(0, 1)).containsExactly(4, 2);
        assertThat(ops.liveTensors()).isEqualTo(2);
        ArrayTensor late = rows(9);
        assertThatThrownBy(() -> cache.storeSome(0, 4, new int[] {2}, new int[] {2}, late))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("unit 2").hasMessageContaining("step 4");
        cache.close();
        assertThat(cache.currentBytes()).isZero();
        assertThat(late.isReleased()).isFalse();
        late.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void storeSomePlacesBothRowsOfAGuidedImage() {
        // two guided images decided as one: unit u owns rows u (conditional) and u + 2 (unconditional)
        FeatureCache<ArrayTensor> cache = new FeatureCache<>(ops, 1, 2, 2, 4);
        cache.storeAll(0, 0, rows(0, 1, 2, 3));
        try (ArrayTensor image1 = rows(11, 13)) {
            cache.storeSome(0, 1, new int[] {1}, new int[] {1, 3}, image1);
        }
        assertThat(values(cache.slot(0, 0))).containsExactly(0, 11, 2, 13);
        assertThat(values(cache.slot(0, 1))[1]).isEqualTo(1);
        assertThat(values(cache.slot(0, 1))[3]).isEqualTo(3);
        assertThat(cache.computedSteps(0, 0)).containsExactly(0);
        assertThat(cache.computedSteps(0, 1)).containsExactly(1, 0);
        cache.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void aFirstValueStoredForSomeUnitsOnlyIsReadableInTheirRows() {
        FeatureCache<ArrayTensor> cache = new FeatureCache<>(ops, 1, 1, 3, 3);
        try (ArrayTensor v = rows(7)) {
            cache.storeSome(0, 2, new int[] {1}, new int[] {1}, v);
        }
        assertThat(cache.slot(0, 0).shape()).containsExactly(3, 2);
        assertThat(values(cache.slot(0, 0))[1]).isEqualTo(7);
        assertThat(cache.computedSteps(0, 1)).containsExactly(2);
        assertThat(cache.computedSteps(0, 0)).isEmpty();
        assertThat(cache.count(0, 2)).isZero();
        assertThat(cache.currentBytes()).isEqualTo(24);
        cache.close();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void measurementReferencesAreReplacedWithoutHoldingBoth() {
        FeatureCache<ArrayTensor> cache = new FeatureCache<>(ops, 1, 0, 2, 2);
        Measurement m = Measurement.residualChange(0);
        assertThat(cache.reference(m)).isNull();
        ArrayTensor first = rows(1, 2);
        cache.replaceReference(m, first);
        ArrayTensor second = rows(3, 4);
        cache.replaceReference(m, second);
        assertThat(first.isReleased()).isTrue();
        assertThat(cache.reference(m)).isSameAs(second);
        assertThat(cache.currentBytes()).isEqualTo(16);
        assertThat(cache.peakBytes()).isEqualTo(16);
        cache.close();
        assertThat(second.isReleased()).isTrue();
        assertThat(ops.liveTensors()).isZero();
    }

    @Test
    void misuseIsAnError() {
        FeatureCache<ArrayTensor> cache = new FeatureCache<>(ops, 1, 1, 2, 2);
        cache.storeAll(0, 4, feature(1));
        ArrayTensor again = feature(1);
        assertThatThrownBy(() -> cache.storeAll(0, 4, again)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("step 4");
        assertThatThrownBy(() -> cache.slot(1, 0)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> cache.computedSteps(0, 2)).isInstanceOf(IndexOutOfBoundsException.class);
        cache.close();
        cache.close();
        assertThatThrownBy(() -> cache.slot(0, 0)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed");
        assertThatThrownBy(() -> cache.computedSteps(0, 0)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed");
        assertThat(again.isReleased()).isFalse(); // a rejected value stays the caller's
        again.close();
        assertThat(ops.liveTensors()).isZero();
    }
}
