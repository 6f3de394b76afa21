/**
 * Record once, tune offline: {@link dev.fora.core.recording.Recorder} captures one uncached
 * generation's branch outputs, modulations and modulated inputs per step and block into a
 * {@link dev.fora.core.recording.Recording} (a file), and
 * {@link dev.fora.core.recording.ReplayDiT} plays it back as a model, so that
 * {@link dev.fora.core.testing.PolicyHarness#replay} runs any policy against it in
 * milliseconds, without the model.
 */
package dev.fora.core.recording;
