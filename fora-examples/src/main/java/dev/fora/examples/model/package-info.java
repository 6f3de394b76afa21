/** The model shipped inside the jar and its extraction to a cache directory. */
package dev.fora.examples.model;
