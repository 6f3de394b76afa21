package dev.fora.djl;

import dev.fora.core.engine.CacheBudgetException;
import dev.fora.core.engine.GenerationStats;
import dev.fora.core.engine.Run;
import dev.fora.core.engine.StepScheduler;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.sampling.CancelToken;
import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.GenerationCancelledException;
import dev.fora.core.sampling.NoiseSource;
import dev.fora.core.sampling.PerImageNoise;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves many concurrent requests on one loaded model with continuous batching: every image of
 * every running request is a {@link Run}, and one thread runs model passes over all of them,
 * each at its own step, whatever their policy, sampler, step count or guidance. A request joins
 * between passes and leaves as soon as its images are done; its future completes then.
 *
 * <pre>{@code
 * try (DiTPipeline pipeline = DiTPipeline.load(dir);
 *      GenerationService service = GenerationService.builder(pipeline).maxRows(16).build()) {
 *     CompletableFuture<GeneratedImages> a = service.submit(GenerationRequest.builder(3).seed(7).build());
 *     CompletableFuture<GeneratedImages> b = service.submit(GenerationRequest.builder(5).steps(20).policy("fbcache:0.1").build());
 *     a.join().writePngs(out, "a_", 8);
 * }
 * }</pre>
 *
 * <p><b>Each image as if alone.</b> An image's decisions, cache and noise are its own, so its
 * pixels equal those of the same request run alone through {@link DiTPipeline#generate} (up to
 * the rounding of libtorch's batched products, about 1e-6 on the latent).
 *
 * <p><b>Limits.</b> A pass holds at most {@code maxRows} batch rows (an image guided by CFG is
 * two); a request waits in a bounded queue until its rows and its cache's worst case fit beside
 * the running ones. A full queue, or a request that could never fit, is refused at once with a
 * {@link RequestRejectedException}.
 *
 * <p><b>Stopping a request.</b> Cancelling its future, cancelling its request's
 * {@link GenerationRequest#cancel() token}, or passing its timeout frees its cache before the
 * next pass and touches no other request; the future then fails with a
 * {@link GenerationCancelledException}. A request whose model output goes NaN fails alone with
 * a {@link dev.fora.core.sampling.NonFiniteOutputException}; one whose policy throws fails alone
 * with that exception.
 *
 * <p><b>Phase.</b> A new image may wait a few passes for its first step
 * ({@link Builder#startInPhase}), so that its full steps fall on the passes where the running
 * images compute theirs: with FORA-like schedules they then share one fused call per pass.
 * After a pass in which requests ended, and when nothing runs, the next pass may wait a moment
 * ({@link Builder#joinWindow}, 3 ms) for requests about to arrive, so that clients which send
 * their next request when the last one ends start together rather than a pass apart.
 *
 * <p><b>Closing.</b> {@link #close()} refuses new requests, cancels the queued and running ones
 * and waits for the pass in flight; {@link #drain(Duration)} first lets them finish. Both are
 * safe from any thread while passes run. Closing the pipeline stops the service too.
 */
public final class GenerationService implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(GenerationService.class);
    private static final int LATENCY_WINDOW = 1000;
    private static final ThreadMXBean CPU = ManagementFactory.getThreadMXBean();

    private final DiTPipeline pipeline;
    private final int maxRows;
    private final int queueCapacity;
    private final long cacheBudget;
    private final int startInPhase;
    private final long joinWindowNanos;
    private final long logEveryNanos;
    private final Thread loop;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final ArrayDeque<Job> queue = new ArrayDeque<>();
    /** Cancelled by {@link #close()} or by the pipeline's close: stops every request. */
    private final CancelToken stopping = new CancelToken();
    private boolean accepting = true;
    private boolean finished;
    // statistics, guarded by lock
    private long submitted;
    private long completed;
    private long failed;
    private long cancelled;
    private long rejected;
    private long passes;
    private long passRows;
    private long imagesDelivered;
    private long firstPassNanos = -1;
    private final long[] latencies = new long[LATENCY_WINDOW];
    private int latencyCount;
    private int runningRequests;
    private long cacheBytes;
    private long cpuNanos;

    private GenerationService(Builder b) {
        this.pipeline = b.pipeline;
        this.maxRows = b.maxRows;
        this.queueCapacity = b.queueCapacity;
        this.cacheBudget = b.cacheBudget;
        this.startInPhase = b.startInPhase;
        this.joinWindowNanos = b.joinWindow.toNanos();
        this.logEveryNanos = b.logEvery.toNanos();
        pipeline.serviceStarted(stopping);
        this.loop = new Thread(this::serve, "fora-service-" + pipeline.manifest().name());
        loop.setDaemon(true);
        loop.start();
    }

    /** Starts describing a service over {@code pipeline}. */
    public static Builder builder(DiTPipeline pipeline) {
        return new Builder(pipeline);
    }

    /** The limits of a {@link GenerationService}. */
    public static final class Builder {
        private final DiTPipeline pipeline;
        private int maxRows = 16;
        private int queueCapacity = 64;
        private long cacheBudget = Long.MAX_VALUE;
        private int startInPhase = 4;
        private Duration joinWindow = Duration.ofMillis(3);
        private Duration logEvery = Duration.ofSeconds(30);

        private Builder(DiTPipeline pipeline) {
            this.pipeline = Objects.requireNonNull(pipeline, "pipeline");
        }

        /** The most batch rows in one pass (default 16; a CFG-guided image is two rows). */
        public Builder maxRows(int rows) {
            if (rows < 1) {
                throw new IllegalArgumentException("maxRows must be >= 1, got " + rows);
            }
            this.maxRows = rows;
            return this;
        }

        /**
         * How many requests may wait to start (default 64); one more is refused. At least 1: every
         * request waits in the queue for the next pass, however idle the service.
         */
        public Builder queueCapacity(int requests) {
            if (requests < 1) {
                throw new IllegalArgumentException("queueCapacity must be >= 1 (every request waits for the next pass), got "
                        + requests);
            }
            this.queueCapacity = requests;
            return this;
        }

        /**
         * The most bytes the caches of all running requests may reserve together (default
         * unlimited). A request reserves its policy's worst case; it waits until that fits.
         */
        public Builder cacheBudget(long bytes) {
            if (bytes < 0) {
                throw new IllegalArgumentException("cacheBudget must be >= 0 bytes, got " + bytes);
            }
            this.cacheBudget = bytes;
            return this;
        }

        /**
         * How many passes a new image may wait for its first step so that its full steps line up
         * with those of the running images (default 4; 0 starts it at the next pass). Images whose
         * policies declare their {@linkplain dev.fora.core.cache.CachePolicy#fullSteps full steps}
         * (FORA, TaylorSeer, HiCache, step masks) then share the fused calls of the running ones
         * instead of adding their own; see {@link Run.Builder#startInPhase}.
         */
        public Builder startInPhase(int passes) {
            if (passes < 0) {
                throw new IllegalArgumentException("startInPhase must be >= 0 passes, got " + passes);
            }
            this.startInPhase = passes;
            return this;
        }

        /**
         * How long the service may hold its next pass for requests about to arrive (default 3 ms;
         * zero turns it off): after a pass in which requests ended, until as many new ones are
         * queued, and when nothing runs, until the queued ones fill a pass. Clients that send
         * their next request when the last one ends then start together, as one batch, instead
         * of a pass apart, where each request's first full step would be a computation of its
         * own. The cost is at most this wait per pass in which requests end.
         */
        public Builder joinWindow(Duration window) {
            if (window.isNegative()) {
                throw new IllegalArgumentException("joinWindow must be >= 0, got " + window);
            }
            this.joinWindow = window;
            return this;
        }

        /** How often the stats are logged at INFO while the service works (default 30 s). */
        public Builder logEvery(Duration interval) {
            if (interval.isNegative() || interval.isZero()) {
                throw new IllegalArgumentException("logEvery must be positive, got " + interval);
            }
            this.logEvery = interval;
            return this;
        }

        /** Starts the service's thread. */
        public GenerationService build() {
            return new GenerationService(this);
        }
    }

    /** Submits a request without a timeout; see {@link #submit(GenerationRequest, Duration)}. */
    public CompletableFuture<GeneratedImages> submit(GenerationRequest request) {
        return submit(request, null);
    }

    /**
     * Queues a request. Thread-safe. The future completes with the images when the request's
     * last image is done, or fails with the reason it stopped.
     *
     * @param timeout how long the request may take from now, or null for no limit
     * @throws IllegalArgumentException for a request the model cannot take (a label out of
     *     range, a noise source that is not one stream per image, the whole-model path)
     * @throws RequestRejectedException if the queue is full, the request can never fit, or the
     *     service is closed
     */
    public CompletableFuture<GeneratedImages> submit(GenerationRequest request, Duration timeout) {
        Objects.requireNonNull(request, "request");
        Job job = new Job(request, timeout);
        lock.lock();
        try {
            if (!accepting || stopping.isCancelled()) {
                rejected++;
                throw new RequestRejectedException(RequestRejectedException.Reason.CLOSED, "the service is closed");
            }
            if (job.rows > maxRows) {
                rejected++;
                throw new RequestRejectedException(RequestRejectedException.Reason.TOO_LARGE, "the request needs " + job.rows
                        + " rows per pass (" + request.images() + " images" + (job.guided ? ", each guided: 2 rows" : "")
                        + ") but a pass holds at most " + maxRows);
            }
            if (job.reservedBytes > cacheBudget) {
                rejected++;
                throw new RequestRejectedException(RequestRejectedException.Reason.TOO_LARGE, "the request's cache needs up to "
                        + job.reservedBytes + " bytes but the service's budget is " + cacheBudget);
            }
            if (queue.size() >= queueCapacity) {
                rejected++;
                throw new RequestRejectedException(RequestRejectedException.Reason.QUEUE_FULL, "the queue is full ("
                        + queueCapacity + " requests waiting); retry later");
            }
            queue.add(job);
            submitted++;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        return job.future;
    }

    /** The service's numbers now. Thread-safe. */
    public ServiceStats stats() {
        lock.lock();
        try {
            long[] window = Arrays.copyOf(latencies, Math.min(latencyCount, LATENCY_WINDOW));
            Arrays.sort(window);
            double seconds = firstPassNanos < 0 ? 0 : (System.nanoTime() - firstPassNanos) / 1e9;
            return new ServiceStats(submitted, completed, failed, cancelled, rejected, queue.size(), runningRequests, passes,
                    passes == 0 ? 0 : (double) passRows / passes, seconds == 0 ? 0 : imagesDelivered / seconds,
                    percentile(window, 0.50) / 1e6, percentile(window, 0.95) / 1e6, cacheBytes, cpuNanos / 1e9);
        } finally {
            lock.unlock();
        }
    }

    private static double percentile(long[] sorted, double q) {
        if (sorted.length == 0) {
            return 0;
        }
        return sorted[Math.min(sorted.length - 1, (int) Math.ceil(q * sorted.length) - 1)];
    }

    /**
     * Refuses new requests and lets the queued and running ones finish, for at most
     * {@code timeout}; then closes (cancelling what is left).
     *
     * @return whether every request finished in time
     */
    public boolean drain(Duration timeout) {
        lock.lock();
        try {
            accepting = false;
            changed.signalAll();
            long left = timeout.toNanos();
            while (!finished && (!queue.isEmpty() || runningRequests > 0) && left > 0) {
                left = changed.awaitNanos(left);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            lock.unlock();
        }
        boolean done;
        lock.lock();
        try {
            done = queue.isEmpty() && runningRequests == 0;
        } finally {
            lock.unlock();
        }
        close();
        return done;
    }

    /**
     * Refuses new requests, cancels the queued and running ones (their futures fail with a
     * {@link GenerationCancelledException}) and waits for the pass in flight. Idempotent; safe
     * from any thread but the service's own.
     */
    @Override
    public void close() {
        if (Thread.currentThread() == loop) {
            throw new IllegalStateException("cannot close the service from inside one of its passes");
        }
        lock.lock();
        try {
            accepting = false;
            stopping.cancel("the service was closed");
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        boolean interrupted = false;
        while (loop.isAlive()) {
            try {
                loop.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        pipeline.serviceStopped(stopping);
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    // ---- the service's thread ----

    private void serve() {
        List<Job> active = new ArrayList<>();
        int activeRows = 0;
        long reserved = 0;
        long lastLog = System.nanoTime();
        TorchScriptModel model = null;
        StepScheduler<NDTensor> scheduler = null;
        int justEnded = 0;
        try {
            model = pipeline.newModel();
            scheduler = new StepScheduler<>(model);
            while (true) {
                List<Job> admitted = new ArrayList<>();
                lock.lock();
                try {
                    while (queue.isEmpty() && active.isEmpty() && accepting && !stopping.isCancelled()) {
                        changed.await();
                    }
                    awaitJoining(active.isEmpty() ? Integer.MAX_VALUE : justEnded, maxRows - activeRows);
                    if (stopping.isCancelled()) {
                        for (Job j : queue) {
                            cancelled += j.cancel(stopping.reason().orElse("the service was closed")) ? 1 : 0;
                        }
                        queue.clear();
                    }
                    if (queue.isEmpty() && active.isEmpty() && (!accepting || stopping.isCancelled())) {
                        break;
                    }
                    Iterator<Job> waiting = queue.iterator();
                    while (waiting.hasNext()) {
                        Job j = waiting.next();
                        if (j.future.isDone()) {
                            waiting.remove();
                            cancelled++;
                            continue;
                        }
                        if (activeRows + j.rows > maxRows || reserved + j.reservedBytes > cacheBudget) {
                            break; // first come, first served: nobody overtakes the head of the queue
                        }
                        waiting.remove();
                        admitted.add(j);
                        activeRows += j.rows;
                        reserved += j.reservedBytes;
                    }
                    runningRequests = active.size() + admitted.size();
                } finally {
                    lock.unlock();
                }
                for (Job j : admitted) {
                    try {
                        j.start(scheduler, model);
                        active.add(j);
                    } catch (RuntimeException e) {
                        j.closeRuns();
                        activeRows -= j.rows;
                        reserved -= j.reservedBytes;
                        finish(j, e);
                    }
                }
                long now = System.nanoTime();
                for (Iterator<Job> it = active.iterator(); it.hasNext(); ) {
                    Job j = it.next();
                    String why = j.stopReason(now);
                    if (why != null) {
                        it.remove();
                        activeRows -= j.rows;
                        reserved -= j.reservedBytes;
                        j.closeRuns();
                        lock.lock();
                        try {
                            cancelled++;
                            runningRequests = active.size();
                            cacheBytes = scheduler.cacheBytes();
                        } finally {
                            lock.unlock();
                        }
                        boolean mine = j.cancel(why);
                        LOG.debug("request stopped ({}): {}", why, mine ? "cancelled" : "its future was done");
                    }
                }
                if (active.isEmpty()) {
                    continue;
                }
                List<Run<NDTensor>> runs = new ArrayList<>();
                for (Job j : active) {
                    runs.addAll(j.runs);
                }
                int[] stepsBefore = runs.stream().mapToInt(Run::nextStep).toArray();
                pipeline.enterCall();
                try {
                    scheduler.pass(runs);
                } finally {
                    pipeline.exitCall();
                }
                // rows that went through the model: not those of images waiting to start in phase
                int ranRows = 0;
                int k = 0;
                for (Job j : active) {
                    for (Run<NDTensor> r : j.runs) {
                        boolean ran = r.nextStep() != stepsBefore[k++] || r.state() == Run.State.FAILED;
                        ranRows += ran ? (j.guided ? 2 : 1) : 0;
                    }
                }
                lock.lock();
                try {
                    passes++;
                    passRows += ranRows;
                    cpuNanos = CPU.getCurrentThreadCpuTime();
                    if (firstPassNanos < 0) {
                        firstPassNanos = now;
                    }
                    cacheBytes = scheduler.cacheBytes();
                } finally {
                    lock.unlock();
                }
                // finished requests leave now; their futures complete once the stats count them
                List<Job> ended = new ArrayList<>();
                List<Object> outcomes = new ArrayList<>();
                for (Iterator<Job> it = active.iterator(); it.hasNext(); ) {
                    Job j = it.next();
                    RuntimeException failure = j.failure();
                    if (failure == null && !j.done()) {
                        continue;
                    }
                    it.remove();
                    activeRows -= j.rows;
                    reserved -= j.reservedBytes;
                    Object outcome = failure;
                    if (failure == null) {
                        try {
                            outcome = images(j, model);
                        } catch (RuntimeException e) {
                            outcome = e;
                        }
                    }
                    j.closeRuns();
                    ended.add(j);
                    outcomes.add(outcome);
                }
                justEnded = ended.size();
                long done = System.nanoTime();
                lock.lock();
                try {
                    runningRequests = active.size();
                    cacheBytes = scheduler.cacheBytes();
                    for (int i = 0; i < ended.size(); i++) {
                        if (outcomes.get(i) instanceof GeneratedImages images) {
                            completed++;
                            imagesDelivered += images.count();
                            latencies[latencyCount++ % LATENCY_WINDOW] = done - ended.get(i).submittedNanos;
                        } else {
                            failed++;
                        }
                    }
                    changed.signalAll();
                } finally {
                    lock.unlock();
                }
                for (int i = 0; i < ended.size(); i++) {
                    if (outcomes.get(i) instanceof GeneratedImages images) {
                        ended.get(i).future.complete(images);
                    } else {
                        RuntimeException e = (RuntimeException) outcomes.get(i);
                        ended.get(i).future.completeExceptionally(e);
                        LOG.debug("request failed: {}", e.toString());
                    }
                }
                if (System.nanoTime() - lastLog >= logEveryNanos) {
                    lastLog = System.nanoTime();
                    LOG.info("{}", stats());
                }
            }
        } catch (IllegalStateException e) {
            if (!pipeline.isClosing()) {
                LOG.error("the generation service stopped on an unexpected error", e);
            }
            stopEverything(active, pipeline.isClosing() ? "the pipeline was closed"
                    : "the service stopped on an error: " + e.getMessage());
        } catch (Throwable t) {
            LOG.error("the generation service stopped on an unexpected error", t);
            stopEverything(active, "the service stopped on an error: " + t);
        } finally {
            for (Job j : active) {
                j.closeRuns();
            }
            if (scheduler != null) {
                scheduler.close();
            }
            if (model != null) {
                model.close();
            }
            lock.lock();
            try {
                finished = true;
                accepting = false;
                runningRequests = 0;
                cacheBytes = 0;
                changed.signalAll();
            } finally {
                lock.unlock();
            }
            LOG.info("generation service stopped: {}", stats());
        }
    }

    /**
     * Holds the next pass, at most the join window, until {@code expected} requests are queued or
     * the queued ones fill {@code freeRows}. Called with the lock held.
     */
    private void awaitJoining(int expected, int freeRows) throws InterruptedException {
        if (joinWindowNanos == 0 || expected == 0) {
            return;
        }
        long deadline = System.nanoTime() + joinWindowNanos;
        while (accepting && !stopping.isCancelled() && queue.size() < expected
                && queue.stream().mapToInt(j -> j.rows).sum() < freeRows) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return;
            }
            changed.awaitNanos(left);
        }
    }

    private void stopEverything(List<Job> active, String why) {
        lock.lock();
        try {
            accepting = false;
            for (Job j : active) {
                j.closeRuns();
                cancelled += j.cancel(why) ? 1 : 0;
            }
            for (Job j : queue) {
                cancelled += j.cancel(why) ? 1 : 0;
            }
            queue.clear();
        } finally {
            lock.unlock();
        }
        active.clear();
    }

    /** A request that could not start: counted, then its future fails. */
    private void finish(Job j, RuntimeException e) {
        lock.lock();
        try {
            failed++;
        } finally {
            lock.unlock();
        }
        j.future.completeExceptionally(e);
        LOG.debug("request failed: {}", e.toString());
    }

    /** The images of a request whose runs are all done: latents, the decoder if any, stats. */
    private GeneratedImages images(Job j, TorchScriptModel model) {
        DiTConfig c = pipeline.config();
        int n = j.runs.size();
        long[] shape = {n, c.inChannels(), c.inputSize(), c.inputSize()};
        int per = c.inChannels() * c.inputSize() * c.inputSize();
        float[] latents = new float[n * per];
        List<GenerationStats> stats = new ArrayList<>(n);
        for (int k = 0; k < n; k++) {
            Run<NDTensor> r = j.runs.get(k);
            System.arraycopy(model.ops().toFloats(r.latent()), 0, latents, k * per, per);
            stats.add(r.stats());
        }
        TorchScriptCalls calls = model.calls().since(j.callsAtStart);
        GenerationStats all = GenerationStats.ofImages(stats);
        if (pipeline.decoder().isEmpty() || !j.request.decode()) {
            return new GeneratedImages(shape, latents, j.request.conditioning(), all, calls, System.nanoTime() - j.startNanos);
        }
        TorchScriptDecoder decoder = pipeline.decoder().get();
        long d0 = System.nanoTime();
        float[] pixels;
        pipeline.enterCall();
        try {
            pixels = decoder.decode(latents, shape);
        } finally {
            pipeline.exitCall();
        }
        return new GeneratedImages(decoder.imageShape(shape), pixels, shape, latents, System.nanoTime() - d0,
                j.request.conditioning(), all, calls, System.nanoTime() - j.startNanos);
    }

    /** One request: its future, limits and, once started, one run per image. */
    private final class Job {
        final GenerationRequest request;
        final CompletableFuture<GeneratedImages> future = new CompletableFuture<>();
        final long submittedNanos = System.nanoTime();
        final long deadlineNanos;
        final boolean guided;
        final int rows;
        final long reservedBytes;
        final DiffusionSampler sampler;
        final int guidedChannels;
        final List<NoiseSource> noise;
        List<Run<NDTensor>> runs = List.of();
        TorchScriptCalls callsAtStart;
        long startNanos;

        Job(GenerationRequest request, Duration timeout) {
            this.request = request;
            if (request.forward() != GenerationRequest.Forward.CACHED) {
                throw new IllegalArgumentException("the service runs requests through the cache; the whole-model path is"
                        + " for DiTPipeline.generate");
            }
            DiTConfig c = pipeline.config();
            c.conditioning().check(request.conditioning(), request.images(), false);
            if (timeout != null && (timeout.isNegative() || timeout.isZero())) {
                throw new IllegalArgumentException("timeout must be positive, got " + timeout);
            }
            this.deadlineNanos = timeout == null ? Long.MAX_VALUE : submittedNanos + timeout.toNanos();
            this.guided = request.cfgScale() != 1.0;
            this.rows = request.images() * (guided ? 2 : 1);
            this.guidedChannels = RunPath.guidedChannels(pipeline.manifest(), request.sampler(), request.guidedChannels());
            this.sampler = RunPath.sampler(pipeline.manifest(), pipeline.trainingSchedule(), request.sampler(), request.steps(),
                    request.clipDenoised());
            NoiseSource source = request.noiseSource();
            if (!(source instanceof PerImageNoise perImage) || perImage.images() != request.images()) {
                throw new IllegalArgumentException("the service needs one noise stream per image: give the request a seed,"
                        + " or a PerImageNoise of " + request.images() + " streams");
            }
            List<NoiseSource> streams = new ArrayList<>(request.images());
            for (int k = 0; k < request.images(); k++) {
                streams.add(perImage.image(k));
            }
            this.noise = streams;
            this.reservedBytes = Run.worstCaseBytes(request.policy(), c, request.steps(), guided) * request.images();
            if (reservedBytes > request.cacheBudget()) {
                throw new CacheBudgetException(request.policy().spec().orElse(String.valueOf(request.policy())),
                        reservedBytes, request.cacheBudget(), request.images() + " images");
            }
        }

        void start(StepScheduler<NDTensor> scheduler, TorchScriptModel model) {
            startNanos = System.nanoTime();
            callsAtStart = model.calls();
            List<Run<NDTensor>> made = new ArrayList<>(noise.size());
            runs = made;
            for (int k = 0; k < noise.size(); k++) {
                made.add(scheduler.newRun(request.policy(), sampler).conditioning(request.conditioning().rows(new int[] {k}))
                        .noise(noise.get(k)).guidance(request.cfgScale(), guidedChannels).checkFinite(request.checkFinite())
                        .startInPhase(startInPhase).open());
            }
        }

        /** Why the request must stop before the next pass, or null. */
        String stopReason(long now) {
            if (future.isDone()) {
                return "its future was cancelled";
            }
            if (stopping.isCancelled()) {
                return stopping.reason().orElse("the service was closed");
            }
            if (request.cancel().isCancelled()) {
                return request.cancel().reason().orElse("the request was cancelled");
            }
            if (now - deadlineNanos > 0) {
                return "its timeout passed";
            }
            return null;
        }

        RuntimeException failure() {
            for (Run<NDTensor> r : runs) {
                if (r.state() == Run.State.FAILED) {
                    return r.failure().orElseThrow();
                }
            }
            return null;
        }

        boolean done() {
            return runs.stream().allMatch(r -> r.state() == Run.State.DONE);
        }

        void closeRuns() {
            runs.forEach(Run::close);
        }

        /** Fails the future as cancelled; false if it was already done. */
        boolean cancel(String why) {
            int step = runs.stream().mapToInt(Run::nextStep).min().orElse(0);
            return future.completeExceptionally(new GenerationCancelledException(why, step, request.steps()));
        }
    }
}
