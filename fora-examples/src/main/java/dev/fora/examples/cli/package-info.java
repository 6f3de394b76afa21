/** The picocli commands of {@code fora}, their shared options, one-line errors and exit codes. */
package dev.fora.examples.cli;
