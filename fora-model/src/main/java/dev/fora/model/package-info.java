/**
 * The model shipped with FORA4J and its extraction to a cache directory. This package needs only
 * the JDK and Gson, so that the library's tests, the {@code fora} command, the Spark job and any
 * application can use the model without the command-line module.
 */
package dev.fora.model;
