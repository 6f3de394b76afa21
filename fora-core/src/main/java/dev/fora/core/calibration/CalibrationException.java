package dev.fora.core.calibration;

/** A calibration that cannot be done: the target is out of the policy's reach, or the recording lacks a signal. */
public final class CalibrationException extends IllegalArgumentException {

    private static final long serialVersionUID = 1L;

    /** @param message what cannot be done and why */
    public CalibrationException(String message) {
        super(message);
    }
}
