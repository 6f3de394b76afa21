/**
 * A test kit for policy authors: a {@link dev.fora.core.testing.SyntheticDiT} on plain arrays
 * and a {@link dev.fora.core.testing.PolicyHarness} that runs any policy against the
 * uncached run and reports decisions, compute fraction and output error.
 */
package dev.fora.core.testing;
