/** Progress reporting on stderr. */
package dev.fora.examples.progress;
