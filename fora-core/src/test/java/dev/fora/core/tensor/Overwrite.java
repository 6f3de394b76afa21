package dev.fora.core.tensor;

/** Writes into an array tensor, which the library's out-of-place operations never do: for test models that fill a given buffer. */
public final class Overwrite {

    private Overwrite() {
    }

    /** Copies {@code source}'s elements into {@code target}, of the same size. */
    public static void copy(ArrayTensor source, ArrayTensor target) {
        float[] from = source.data();
        float[] to = target.data();
        if (from.length != to.length) {
            throw new IllegalArgumentException(from.length + " elements into " + to.length);
        }
        System.arraycopy(from, 0, to, 0, from.length);
    }
}
