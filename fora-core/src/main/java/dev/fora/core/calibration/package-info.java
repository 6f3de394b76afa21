/**
 * Calibration of threshold policies to a target speed-up for one model, sampler and step
 * count: {@link dev.fora.core.calibration.Calibration}.
 */
package dev.fora.core.calibration;
