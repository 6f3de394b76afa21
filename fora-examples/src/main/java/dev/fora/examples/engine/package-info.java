/** The loaded model as the commands use it: batched runs along the component or whole-model path. */
package dev.fora.examples.engine;
