package dev.fora.core.cache;

/** The two cacheable branches of a DiT block; their outputs before gating are the cached features. */
public enum Branch {
    /** {@code attn(modulate(LN(x), shift1, scale1))}. */
    ATTENTION,
    /** {@code mlp(modulate(LN(x), shift2, scale2))}. */
    MLP
}
