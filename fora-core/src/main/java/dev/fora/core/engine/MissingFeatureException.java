package dev.fora.core.engine;

/** A policy asked to reuse or forecast a feature the cache does not hold enough computed values of. */
public final class MissingFeatureException extends IllegalStateException {

    private static final long serialVersionUID = 1L;

    MissingFeatureException(String message) {
        super(message);
    }
}
