package dev.fora.core.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.List;
import org.junit.jupiter.api.Test;

class ArrayOpsTest {

    private final ArrayOps ops = new ArrayOps();

    private ArrayTensor t(long[] shape, float... values) {
        return ops.fromFloats(shape, values);
    }

    @Test
    void elementwiseArithmeticIsOutOfPlace() {
        ArrayTensor a = t(new long[] {2, 2}, 1, 2, 3, 4);
        ArrayTensor b = t(new long[] {2, 2}, 10, 20, 30, 40);
        assertThat(ops.toFloats(ops.add(a, b))).containsExactly(11, 22, 33, 44);
        assertThat(ops.toFloats(ops.sub(b, a))).containsExactly(9, 18, 27, 36);
        assertThat(ops.toFloats(ops.mul(a, b))).containsExactly(10, 40, 90, 160);
        assertThat(ops.toFloats(ops.affine(a, 2, 1))).containsExactly(3, 5, 7, 9);
        assertThat(ops.toFloats(ops.scale(a, -1))).containsExactly(-1, -2, -3, -4);
        assertThat(ops.toFloats(ops.clamp(ops.affine(a, 1, -2.5), -1, 1))).containsExactly(-1, -0.5f, 0.5f, 1);
        assertThat(ops.toFloats(ops.exp(t(new long[] {1}, 0)))).containsExactly(1);
        assertThat(ops.toFloats(ops.linearCombination(new double[] {2, -0.5}, List.of(a, b))))
                .containsExactly(-3, -6, -9, -12);
        assertThat(ops.toFloats(a)).containsExactly(1, 2, 3, 4);
    }

    @Test
    void aRowLinearCombinationIsEachRowsOwnLinearCombination() {
        ArrayTensor a = t(new long[] {3, 2}, 1, 2, 3, 4, 5, 6);
        ArrayTensor b = t(new long[] {3, 2}, 10, 20, 30, 40, 50, 60);
        double[][] c = {{2, 1, 0.5}, {-0.5}};
        assertThat(ops.toFloats(ops.rowLinearCombination(c, List.of(a, b)))).containsExactly(-3, -6, -12, -16, -22.5f, -27);
        for (int r = 0; r < 3; r++) {
            ArrayTensor ra = ops.sliceBatch(a, r, r + 1);
            ArrayTensor rb = ops.sliceBatch(b, r, r + 1);
            assertThat(ops.toFloats(ops.sliceBatch(ops.rowLinearCombination(c, List.of(a, b)), r, r + 1)))
                    .containsExactly(ops.toFloats(ops.linearCombination(new double[] {c[0][r], -0.5}, List.of(ra, rb))));
        }
        assertThatThrownBy(() -> ops.rowLinearCombination(new double[][] {{1, 2}}, List.of(a)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("one per row (3)");
        assertThatThrownBy(() -> ops.rowLinearCombination(new double[][] {{1}}, List.of(a, b)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("1 arrays for 2 tensors");
    }

    @Test
    void gatedAddBroadcastsThePerSampleGateOverTokens() {
        // x, branch: [N=2, T=2, D=2]; gate: [2, 2]
        ArrayTensor x = t(new long[] {2, 2, 2}, 0, 0, 0, 0, 1, 1, 1, 1);
        ArrayTensor branch = t(new long[] {2, 2, 2}, 1, 2, 3, 4, 5, 6, 7, 8);
        ArrayTensor gate = t(new long[] {2, 2}, 10, 100, -1, 0);
        assertThat(ops.toFloats(ops.gatedAdd(x, gate, branch)))
                .containsExactly(10, 200, 30, 400, 1 - 5, 1, 1 - 7, 1);
        assertThatThrownBy(() -> ops.gatedAdd(x, t(new long[] {2, 3}, new float[6]), branch))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("gate [N,D]");
    }

    @Test
    void sliceAndConcatAlongBatchAndChannels() {
        float[] v = new float[2 * 3 * 2];
        for (int i = 0; i < v.length; i++) {
            v[i] = i;
        }
        ArrayTensor a = t(new long[] {2, 3, 2}, v);
        ArrayTensor second = ops.sliceBatch(a, 1, 2);
        assertThat(second.shape()).containsExactly(1, 3, 2);
        assertThat(ops.toFloats(second)).containsExactly(6, 7, 8, 9, 10, 11);
        ArrayTensor mid = ops.sliceChannels(a, 1, 3);
        assertThat(mid.shape()).containsExactly(2, 2, 2);
        assertThat(ops.toFloats(mid)).containsExactly(2, 3, 4, 5, 8, 9, 10, 11);
        ArrayTensor rebuilt = ops.concatChannels(List.of(ops.sliceChannels(a, 0, 1), mid));
        assertThat(ops.toFloats(rebuilt)).containsExactly(v);
        assertThat(ops.toFloats(ops.concatBatch(List.of(ops.sliceBatch(a, 0, 1), second)))).containsExactly(v);
        assertThatThrownBy(() -> ops.sliceChannels(a, 2, 4)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("out of range");
    }

    @Test
    void rowAbsSumsSumEachRowOfTheBatchDimension() {
        ArrayTensor a = t(new long[] {3, 2, 2}, 1, -1, 2, -2, 0, 0, 0, 0, -0.5f, 0.25f, 3, -4);
        assertThat(ops.rowAbsSums(a)).containsExactly(new double[] {6, 0, 7.75}, within(1e-12));
        // a vector: every element is a row
        assertThat(ops.rowAbsSums(t(new long[] {4}, 1, -1, 2, -2))).containsExactly(1, 1, 2, 2);
        // an empty batch has no rows
        assertThat(ops.rowAbsSums(t(new long[] {0, 3}))).isEmpty();
        // the relative L1 change of one image is two row sums: sum|now - before| / sum|before|
        ArrayTensor now = t(new long[] {2, 2}, 1, -1, 2, -2);
        ArrayTensor before = t(new long[] {2, 2}, 2, -2, 2, -2);
        double[] num = ops.rowAbsSums(ops.sub(now, before));
        double[] den = ops.rowAbsSums(before);
        assertThat(num[0] / den[0]).isCloseTo(2 / 4.0, within(1e-12));
        assertThat(num[1] / den[1]).isZero();
        assertThat(ops.toFloats(a)).containsExactly(1, -1, 2, -2, 0, 0, 0, 0, -0.5f, 0.25f, 3, -4);
        long live = ops.liveTensors();
        ops.rowAbsSums(a);
        assertThat(ops.liveTensors()).as("a reduction creates no tensor").isEqualTo(live);
    }

    @Test
    void gatherRowsPicksRowsInOrderWithRepeats() {
        ArrayTensor a = t(new long[] {3, 1, 2}, 0, 1, 10, 11, 20, 21);
        ArrayTensor picked = ops.gatherRows(a, new int[] {2, 0, 2, 1});
        assertThat(picked.shape()).containsExactly(4, 1, 2);
        assertThat(ops.toFloats(picked)).containsExactly(20, 21, 0, 1, 20, 21, 10, 11);
        assertThat(ops.toFloats(ops.gatherRows(a, new int[] {1}))).containsExactly(10, 11);
        // out of place: the input is unchanged
        assertThat(ops.toFloats(a)).containsExactly(0, 1, 10, 11, 20, 21);
        // gathering with a permutation and its inverse gives the input back
        int[] order = {2, 0, 1};
        int[] inverse = {1, 2, 0};
        assertThat(ops.toFloats(ops.gatherRows(ops.gatherRows(a, order), inverse))).containsExactly(ops.toFloats(a));
    }

    @Test
    void stackRowsAreTheSameRowsOfEveryStackedTensor() {
        ArrayTensor s = t(new long[] {2, 3, 2}, 0, 1, 10, 11, 20, 21, 100, 101, 110, 111, 120, 121);
        ArrayTensor picked = ops.gatherStackRows(s, new int[] {2, 0});
        assertThat(picked.shape()).containsExactly(2, 2, 2);
        assertThat(ops.toFloats(picked)).containsExactly(20, 21, 0, 1, 120, 121, 100, 101);
        // stacks join along the same dimension
        assertThat(ops.toFloats(ops.concatChannels(List.of(picked, ops.gatherStackRows(s, new int[] {1})))))
                .containsExactly(20, 21, 0, 1, 10, 11, 120, 121, 100, 101, 110, 111);
        assertThatThrownBy(() -> ops.gatherStackRows(s, new int[] {3})).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("row 3 out of range for stack shape [2, 3, 2]");
        assertThatThrownBy(() -> ops.gatherStackRows(s, new int[0])).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("at least one row");
        assertThatThrownBy(() -> ops.gatherStackRows(t(new long[] {2}, 0, 1), new int[] {0}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("needs a stack");
    }

    @Test
    void stridedSlicesAndRepeatedRowsAreGathersOfTheirRows() {
        ArrayTensor a = t(new long[] {4, 2}, 0, 1, 10, 11, 20, 21, 30, 31);
        assertThat(ops.toFloats(ops.sliceBatch(a, 0, 4, 2))).containsExactly(0, 1, 20, 21);
        assertThat(ops.toFloats(ops.sliceBatch(a, 1, 4, 2))).containsExactly(10, 11, 30, 31);
        assertThat(ops.toFloats(ops.sliceBatch(a, 1, 4, 3))).containsExactly(10, 11);
        assertThat(ops.toFloats(ops.sliceBatch(a, 1, 3, 1))).containsExactly(ops.toFloats(ops.sliceBatch(a, 1, 3)));
        ArrayTensor twice = ops.repeatRows(a, 2);
        assertThat(twice.shape()).containsExactly(8, 2);
        assertThat(ops.toFloats(twice)).containsExactly(0, 1, 0, 1, 10, 11, 10, 11, 20, 21, 20, 21, 30, 31, 30, 31);
        assertThat(ops.toFloats(ops.repeatRows(a, 1))).containsExactly(ops.toFloats(a));
        assertThatThrownBy(() -> ops.sliceBatch(a, 0, 4, 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("step must be >= 1");
        assertThatThrownBy(() -> ops.sliceBatch(a, 0, 5, 2)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ops.repeatRows(a, 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("repeat >= 1");
    }

    @Test
    void gatherRowsRejectsRowsOutsideTheBatch() {
        ArrayTensor a = t(new long[] {3, 2}, 0, 1, 2, 3, 4, 5);
        assertThatThrownBy(() -> ops.gatherRows(a, new int[] {0, 3})).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("row 3 out of range for shape [3, 2]");
        assertThatThrownBy(() -> ops.gatherRows(a, new int[] {-1})).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("row -1 out of range");
        assertThatThrownBy(() -> ops.gatherRows(a, new int[0])).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("at least one row");
        assertThatThrownBy(() -> ops.gatherRows(t(new long[] {}, 1), new int[] {0}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("batch dimension");
        long live = ops.liveTensors();
        assertThatThrownBy(() -> ops.gatherRows(a, new int[] {5}));
        assertThat(ops.liveTensors()).as("a rejected gather creates nothing").isEqualTo(live);
    }

    @Test
    void shapeMismatchIsRejected() {
        assertThatThrownBy(() -> ops.add(t(new long[] {2}, 1, 2), t(new long[] {1, 2}, 1, 2)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[2] and [1, 2]");
        assertThatThrownBy(() -> ops.fromFloats(new long[] {3}, new float[2]))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("needs 3 elements");
    }

    @Test
    void tensorsOfAnotherInstanceAreRejected() {
        ArrayOps other = new ArrayOps();
        ArrayTensor foreign = other.fromFloats(new long[] {1}, new float[] {1});
        assertThatThrownBy(() -> ops.add(foreign, foreign)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("another ArrayOps");
        assertThatThrownBy(() -> ops.attach(foreign, ops.currentScope())).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ops.attach(t(new long[] {1}, 1), other.newDetachedScope()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("scope does not belong");
    }

    @Test
    void scopesReleaseWhatTheyOwnAndAttachMovesTensorsOut() {
        assertThat(ops.liveTensors()).isZero();
        TensorScope outer = ops.currentScope();
        ArrayTensor kept;
        ArrayTensor temp;
        try (TensorScope step = ops.openScope()) {
            assertThat(ops.currentScope()).isSameAs(step);
            temp = t(new long[] {2}, 1, 2);
            kept = ops.attach(ops.add(temp, temp), outer);
            assertThat(ops.liveTensors()).isEqualTo(2);
            assertThat(ops.liveBytes()).isEqualTo(16);
        }
        assertThat(ops.currentScope()).isSameAs(outer);
        assertThat(temp.isReleased()).isTrue();
        assertThat(kept.isReleased()).isFalse();
        assertThat(ops.liveTensors()).isEqualTo(1);
        assertThatThrownBy(() -> ops.add(temp, kept)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("released");
        kept.close();
        kept.close(); // idempotent
        assertThat(ops.liveTensors()).isZero();
        assertThat(ops.liveBytes()).isZero();
    }

    @Test
    void detachedScopeNeverBecomesCurrentAndClosingAnOuterScopeClosesInnerOnes() {
        TensorScope holder = ops.newDetachedScope();
        TensorScope root = ops.currentScope();
        assertThat(ops.currentScope()).isSameAs(root);
        ArrayTensor held = ops.attach(t(new long[] {1}, 5), holder);
        TensorScope outer = ops.openScope();
        ops.openScope();
        ArrayTensor inner = t(new long[] {1}, 1);
        outer.close();
        assertThat(inner.isReleased()).isTrue();
        assertThat(ops.currentScope()).isSameAs(root);
        assertThat(held.isReleased()).isFalse();
        holder.close();
        assertThat(held.isReleased()).isTrue();
        assertThat(ops.liveTensors()).isZero();
        assertThatThrownBy(() -> ops.attach(t(new long[] {1}, 1), holder)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed scope");
    }
}
