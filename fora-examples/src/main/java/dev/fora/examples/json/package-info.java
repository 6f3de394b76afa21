/** What the command line and the server say about JSON they were given. */
package dev.fora.examples.json;
