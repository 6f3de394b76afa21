/** {@code fora serve}: the HTTP face of a {@link dev.fora.djl.GenerationService}. */
package dev.fora.examples.serve;
