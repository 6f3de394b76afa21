package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDManager;
import dev.fora.core.sampling.SeededGaussianNoise;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import dev.fora.core.tensor.TensorScope;
import java.util.List;
import java.util.function.BiFunction;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** NDArrayOps computes what the core's reference ArrayOps computes, with the same scope rules. */
class NDArrayOpsTest {

    private NDManager parent;
    private NDArrayOps nd;
    private final ArrayOps ref = new ArrayOps();
    private final SeededGaussianNoise noise = new SeededGaussianNoise(1);

    @BeforeEach
    void setUp() {
        parent = NDManager.newBaseManager();
        nd = new NDArrayOps(parent);
    }

    @AfterEach
    void tearDown() {
        nd.close();
        assertThat(parent.getManagedArrays()).isEmpty();
        parent.close();
    }

    private record Pair(NDTensor nd, ArrayTensor ref) {
    }

    private Pair random(long... shape) {
        float[] v = noise.next(shape);
        return new Pair(nd.fromFloats(shape, v), ref.fromFloats(shape, v));
    }

    private void same(NDTensor a, ArrayTensor b) {
        assertThat(a.shape()).containsExactly(b.shape());
        assertThat(Goldens.maxAbsDiff(nd.toFloats(a), ref.toFloats(b))).isLessThan(1e-5);
    }

    @Test
    void aRowLinearCombinationEqualsEachRowsLinearCombinationBitForBit() {
        Pair a = random(3, 4, 2, 2);
        Pair b = random(3, 4, 2, 2);
        double[][] c = {{0.37, -1.9, 2.5}, {1.1}};
        NDTensor rows = nd.rowLinearCombination(c, List.of(a.nd, b.nd));
        same(rows, ref.rowLinearCombination(c, List.of(a.ref, b.ref)));
        for (int r = 0; r < 3; r++) {
            NDTensor alone = nd.linearCombination(new double[] {c[0][r], c[1][0]},
                    List.of(nd.sliceBatch(a.nd, r, r + 1), nd.sliceBatch(b.nd, r, r + 1)));
            assertThat(nd.toFloats(nd.sliceBatch(rows, r, r + 1))).as("row " + r).containsExactly(nd.toFloats(alone));
        }
        // every row's coefficients alike: the plain combination
        assertThat(nd.toFloats(nd.rowLinearCombination(new double[][] {{2, 2, 2}, {-1}}, List.of(a.nd, b.nd))))
                .containsExactly(nd.toFloats(nd.linearCombination(new double[] {2, -1}, List.of(a.nd, b.nd))));
        assertThatThrownBy(() -> nd.rowLinearCombination(new double[][] {{1, 2}}, List.of(a.nd)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("one per row (3)");
    }

    @Test
    void arithmeticMatchesTheReference() {
        Pair a = random(2, 3, 4, 4);
        Pair b = random(2, 3, 4, 4);
        same(nd.add(a.nd, b.nd), ref.add(a.ref, b.ref));
        same(nd.sub(a.nd, b.nd), ref.sub(a.ref, b.ref));
        same(nd.mul(a.nd, b.nd), ref.mul(a.ref, b.ref));
        same(nd.affine(a.nd, 1.7, -0.3), ref.affine(a.ref, 1.7, -0.3));
        same(nd.scale(a.nd, -2.5), ref.scale(a.ref, -2.5));
        same(nd.linearCombination(new double[] {0.5, -1.25}, List.of(a.nd, b.nd)),
                ref.linearCombination(new double[] {0.5, -1.25}, List.of(a.ref, b.ref)));
        same(nd.exp(a.nd), ref.exp(a.ref));
        same(nd.clamp(a.nd, -0.5, 0.5), ref.clamp(a.ref, -0.5, 0.5));
        same(nd.sliceBatch(a.nd, 1, 2), ref.sliceBatch(a.ref, 1, 2));
        same(nd.sliceChannels(a.nd, 1, 3), ref.sliceChannels(a.ref, 1, 3));
        same(nd.concatBatch(List.of(a.nd, b.nd)), ref.concatBatch(List.of(a.ref, b.ref)));
        same(nd.concatChannels(List.of(a.nd, b.nd)), ref.concatChannels(List.of(a.ref, b.ref)));
        same(nd.gatherRows(a.nd, new int[] {1, 0, 1}), ref.gatherRows(a.ref, new int[] {1, 0, 1}));
        Pair four = random(4, 3, 2);
        same(nd.sliceBatch(four.nd, 1, 4, 2), ref.sliceBatch(four.ref, 1, 4, 2));
        same(nd.sliceBatch(four.nd, 0, 3, 2), ref.sliceBatch(four.ref, 0, 3, 2));
        same(nd.repeatRows(four.nd, 2), ref.repeatRows(four.ref, 2));
        Pair stack = random(3, 4, 2);
        same(nd.gatherStackRows(stack.nd, new int[] {3, 0, 1}), ref.gatherStackRows(stack.ref, new int[] {3, 0, 1}));
        // a strided view computes like a copy
        same(nd.sub(nd.sliceBatch(four.nd, 0, 4, 2), nd.sliceBatch(four.nd, 1, 4, 2)),
                ref.sub(ref.sliceBatch(four.ref, 0, 4, 2), ref.sliceBatch(four.ref, 1, 4, 2)));
        double[] ndSums = nd.rowAbsSums(a.nd);
        double[] refSums = ref.rowAbsSums(a.ref);
        assertThat(ndSums).hasSize(2);
        for (int i = 0; i < 2; i++) {
            assertThat(ndSums[i]).isCloseTo(refSums[i], org.assertj.core.data.Offset.offset(1e-4));
        }

        Pair x = random(2, 5, 8);
        Pair g = random(2, 8);
        Pair br = random(2, 5, 8);
        same(nd.gatedAdd(x.nd, g.nd, br.nd), ref.gatedAdd(x.ref, g.ref, br.ref));
    }

    @Test
    void shapesAreCheckedNotBroadcast() {
        Pair a = random(2, 3);
        Pair b = random(1, 3);
        BiFunction<NDTensor, NDTensor, NDTensor> add = nd::add;
        assertThatThrownBy(() -> add.apply(a.nd, b.nd)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("equal shapes");
        assertThatThrownBy(() -> nd.gatedAdd(random(2, 5, 8).nd, random(2, 5).nd, random(2, 5, 8).nd))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> nd.sliceBatch(a.nd, 1, 3)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> nd.sliceBatch(a.nd, 0, 2, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> nd.repeatRows(a.nd, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> nd.gatherStackRows(a.nd, new int[] {3})).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("out of range for stack shape");
        assertThatThrownBy(() -> nd.fromFloats(new long[] {2, 2}, new float[3])).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void scopesReleaseTheirArraysAndRestoreTheCurrentScope() {
        TensorScope root = nd.currentScope();
        NDTensor kept;
        NDTensor temp;
        try (TensorScope step = nd.openScope()) {
            assertThat(nd.currentScope()).isSameAs(step);
            temp = random(4).nd;
            kept = nd.attach(random(4).nd, root);
            assertThat(kept.array().getManager()).isSameAs(nd.rootManager());
        }
        assertThat(nd.currentScope()).isSameAs(root);
        assertThat(temp.isReleased()).isTrue();
        assertThat(kept.isReleased()).isFalse();
        assertThatThrownBy(() -> nd.add(temp, kept)).isInstanceOf(IllegalStateException.class);

        // results of an op land in the current scope even when the inputs live elsewhere
        TensorScope cache = nd.newDetachedScope();
        NDTensor cached = nd.attach(random(4).nd, cache);
        NDTensor sum;
        try (TensorScope step = nd.openScope()) {
            sum = nd.add(cached, kept);
            assertThat(sum.array().getManager()).isNotSameAs(cached.array().getManager());
        }
        assertThat(sum.isReleased()).isTrue();
        assertThat(cached.isReleased()).isFalse();
        cache.close();
        assertThat(cached.isReleased()).isTrue();

        // closing an ancestor closes the scopes below it and makes the nearest open ancestor current
        TensorScope outer = nd.openScope();
        TensorScope inner = nd.openScope();
        NDTensor deep = random(3).nd;
        outer.close();
        assertThat(inner.isClosed()).isTrue();
        assertThat(deep.isReleased()).isTrue();
        assertThat(nd.currentScope()).isSameAs(root);

        NDTensor wrapped;
        try (NDManager users = parent.newSubManager()) {
            wrapped = nd.wrap(users.ones(new ai.djl.ndarray.types.Shape(3)));
            try (TensorScope step = nd.openScope()) {
                nd.add(wrapped, wrapped);
            }
            assertThat(wrapped.isReleased()).as("a wrapped array stays with its owner").isFalse();
        }
        assertThat(wrapped.isReleased()).isTrue();
    }
}
