/**
 * Batch generation on Apache Spark: {@link dev.fora.spark.SparkGenerate} reads a table of
 * requests, generates one PNG per request on the executors and writes a Parquet table of
 * results. Each request is generated as a request of one image with its own seed, so its
 * image equals the single-machine one whatever the partitioning.
 */
package dev.fora.spark;
