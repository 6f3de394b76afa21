package dev.fora.djl;

import java.util.Locale;

/**
 * What a {@link GenerationService} has done since it started, at one moment.
 *
 * @param submitted requests accepted into the queue
 * @param completed requests whose images were delivered
 * @param failed requests that ended with an error (a non-finite output, a bad policy)
 * @param cancelled requests cancelled, timed out, or stopped by close
 * @param rejected requests refused at submit (queue full, too large, closed)
 * @param queued requests waiting to start
 * @param running requests whose images are being sampled
 * @param passes model passes run
 * @param meanRowsPerPass mean batch rows per pass
 * @param imagesPerSecond delivered images over the time since the first pass
 * @param latencyP50Ms median time from submit to delivery, over the last 1,000 delivered requests
 * @param latencyP95Ms 95th percentile of the same
 * @param cacheBytes bytes of cached features held now, over every running request
 * @param cpuSeconds CPU time the service's thread has used; with one libtorch thread the model
 *     runs on it, so this is nearly all the service's work, whatever else loads the host
 */
public record ServiceStats(long submitted, long completed, long failed, long cancelled, long rejected, int queued, int running,
        long passes, double meanRowsPerPass, double imagesPerSecond, double latencyP50Ms, double latencyP95Ms,
        long cacheBytes, double cpuSeconds) {

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "requests: %d submitted, %d completed, %d failed, %d cancelled, %d rejected; queue %d,"
                + " running %d; %d passes, %.1f rows/pass; %.2f images/s; latency p50 %.0f ms, p95 %.0f ms; cache %d bytes; %.1f CPU s",
                submitted, completed, failed, cancelled, rejected, queued, running, passes, meanRowsPerPass, imagesPerSecond,
                latencyP50Ms, latencyP95Ms, cacheBytes, cpuSeconds);
    }
}
