package dev.fora.core.model;

import java.util.Objects;

/**
 * One branch of a block: a residual sub-layer whose output (before its gate) is a cacheable
 * feature.
 *
 * @param name short name, used in spec strings, stats and errors (e.g. {@code attn}, {@code cross}, {@code mlp})
 * @param kind what the branch computes, for its FLOP count
 * @param gate index of the modulation vector that gates the branch
 *     ({@code x + gate[:, None, :] * branch}), or {@link #UNGATED} for a plain residual add
 *     ({@code x + branch}, as PixArt-α's cross-attention)
 */
public record BranchSpec(String name, Kind kind, int gate) {

    /** The {@link #gate} of a branch added without a gate. */
    public static final int UNGATED = -1;

    /** What a branch computes. */
    public enum Kind {
        /** Self-attention over the image tokens. */
        SELF_ATTENTION,
        /** Attention from the image tokens to the conditioning tokens (text). */
        CROSS_ATTENTION,
        /** The pointwise feed-forward network. */
        MLP
    }

    /** Validates the name and gate index. */
    public BranchSpec {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(kind, "kind");
        if (!name.matches("[a-z][a-z0-9_]*")) {
            throw new IllegalArgumentException("branch name \"" + name + "\" must be lower-case letters, digits and _");
        }
        if (gate < UNGATED) {
            throw new IllegalArgumentException("branch " + name + ": gate index must be >= 0 or UNGATED, got " + gate);
        }
    }

    /** Whether the branch is added through an adaLN gate. */
    public boolean gated() {
        return gate != UNGATED;
    }

    @Override
    public String toString() {
        return name;
    }
}
