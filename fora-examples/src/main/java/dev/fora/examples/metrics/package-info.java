/**
 * Image quality and timing statistics: PSNR and SSIM against uncached images, the Frechet
 * distance of classifier features, order statistics of repeated timings.
 */
package dev.fora.examples.metrics;
