/** Images as float batches in [-1, 1] and their PNG grids. */
package dev.fora.examples.image;
