/**
 * The {@code fora} command-line application: {@link dev.fora.examples.Main} and its commands
 * ({@code generate}, {@code compare}, {@code bench}) in {@link dev.fora.examples.cli}.
 */
package dev.fora.examples;
