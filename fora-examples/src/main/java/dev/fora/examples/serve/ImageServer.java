package dev.fora.examples.serve;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.Strictness;
import com.google.gson.TypeAdapter;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import com.google.gson.JsonPrimitive;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.PolicySpecException;
import dev.fora.core.model.ConditioningSpec;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.TextEmbeddings;
import dev.fora.core.sampling.GenerationCancelledException;
import dev.fora.core.sampling.NonFiniteOutputException;
import dev.fora.djl.GeneratedImages;
import dev.fora.djl.GenerationRequest;
import dev.fora.djl.GenerationService;
import dev.fora.djl.RequestRejectedException;
import dev.fora.core.sampling.SamplerKind;
import dev.fora.djl.ServiceStats;
import dev.fora.djl.TextEncoder;
import dev.fora.examples.image.ImageBatch;
import dev.fora.examples.image.ImageGrid;
import dev.fora.examples.json.JsonErrors;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.StringReader;
import java.net.Inet6Address;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP face of a {@link GenerationService}: {@code POST /v1/images} takes one image request as
 * JSON and answers its PNG; {@code GET /v1/health} and {@code GET /v1/metrics} report the
 * service. Every request gets an answer: 200, 400 with {@code {"error": ...}} naming the field
 * for bad input, 429 (queue full) or 503 (stopping) with {@code Retry-After}, 404/405 for other
 * paths and methods, 500 for a generation that failed. No request can name a file or a model.
 */
public final class ImageServer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ImageServer.class);
    private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();
    private static final Set<String> FIELDS = Set.of("label", "seed", "steps", "policy", "sampler", "cfg", "prompt", "embedding",
            "mask");
    /** Longer prompts than this are cut by the tokenizer anyway; the limit keeps the echo and the work small. */
    private static final int MAX_PROMPT = 2000;
    /** Longer policy specs than this are not a policy anyone meant. */
    private static final int MAX_SPEC = 200;
    private static final int MAX_STEPS = 1000;
    /** How much of an oversized body is read and dropped before the 400 (more, and the connection is reset). */
    private static final long DRAIN_LIMIT = 64L << 20;
    private static final TypeAdapter<JsonElement> ELEMENT = new Gson().getAdapter(JsonElement.class);

    private final HttpServer http;
    private final ExecutorService handlers;
    /** Write the answers of image requests, when their images are done (never the service's thread). */
    private final ExecutorService responders;
    private final GenerationService service;
    private final DiTConfig config;
    /** The model directory's text encoder, for {@code "prompt"}, or null. */
    private final TextEncoder encoder;
    private final int maxBodyBytes;
    private final Duration requestTimeout;

    /**
     * Binds {@code host:port} (port 0: any free port) and starts answering.
     *
     * @param encoder the model's text encoder, which turns a request's {@code "prompt"} into its
     *     embedding, or null (a text model then takes {@code "embedding"} only)
     * @param handlerThreads threads that parse requests and wait for their images
     * @param maxBodyBytes the largest request body taken
     * @param requestTimeout how long one image may take before the request is stopped (503)
     */
    public ImageServer(GenerationService service, DiTConfig config, TextEncoder encoder, String host, int port,
            int handlerThreads, int maxBodyBytes, Duration requestTimeout) throws IOException {
        this.service = service;
        this.config = config;
        this.encoder = encoder;
        this.maxBodyBytes = maxBodyBytes;
        this.requestTimeout = requestTimeout;
        this.http = HttpServer.create(new InetSocketAddress(host, port), 256);
        this.handlers = Executors.newFixedThreadPool(handlerThreads, r -> {
            Thread t = new Thread(r, "fora-http");
            t.setDaemon(true);
            return t;
        });
        // After stop() an answer is dropped, not run on the thread that completed its future (the
        // service's); the stopped server has closed the connection anyway.
        this.responders = new ThreadPoolExecutor(handlerThreads, handlerThreads, 0, TimeUnit.MILLISECONDS,
                new LinkedBlockingQueue<>(), r -> {
                    Thread t = new Thread(r, "fora-http-answer");
                    t.setDaemon(true);
                    return t;
                }, new ThreadPoolExecutor.DiscardPolicy());
        http.setExecutor(handlers);
        http.createContext("/", this::handle);
        http.start();
    }

    /** The address it listens on, as {@code http://HOST:PORT}. */
    public String url() {
        InetSocketAddress a = http.getAddress();
        String host = a.getAddress() instanceof Inet6Address ? "[" + a.getAddress().getHostAddress() + "]" : a.getHostString();
        return "http://" + host + ":" + a.getPort();
    }

    public int port() {
        return http.getAddress().getPort();
    }

    /** Stops listening; requests being answered finish first (at most {@code grace}). */
    public void stop(Duration grace) {
        http.stop((int) Math.max(0, grace.toSeconds()));
        handlers.shutdown();
        responders.shutdown();
        try {
            long deadline = System.nanoTime() + grace.toNanos();
            handlers.awaitTermination(grace.toMillis(), TimeUnit.MILLISECONDS);
            responders.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        stop(Duration.ZERO);
        handlers.shutdownNow();
        responders.shutdownNow();
    }

    private void handle(HttpExchange ex) {
        boolean answerLater = false;
        try {
            String path = ex.getRequestURI().getPath();
            String method = ex.getRequestMethod();
            switch (path) {
                case "/v1/images" -> {
                    if (!method.equals("POST")) {
                        notAllowed(ex, "POST");
                    } else {
                        answerLater = images(ex);
                    }
                }
                case "/v1/health" -> {
                    if (!method.equals("GET")) {
                        notAllowed(ex, "GET");
                    } else {
                        json(ex, 200, Map.of("status", "ok"));
                    }
                }
                case "/v1/metrics" -> {
                    if (!method.equals("GET")) {
                        notAllowed(ex, "GET");
                    } else {
                        json(ex, 200, metrics(service.stats()));
                    }
                }
                default -> error(ex, 404, "no such path: " + path + " (POST /v1/images, GET /v1/health, GET /v1/metrics)");
            }
        } catch (IOException e) {
            LOG.debug("client connection failed: {}", e.toString());
        } catch (RuntimeException e) {
            internalError(ex, e);
        } finally {
            if (!answerLater) {
                ex.close();
            }
        }
    }

    /** A 500 for what nobody expected, if the answer has not begun (else the connection closes). */
    private static void internalError(HttpExchange ex, RuntimeException e) {
        LOG.error("unexpected error answering a request", e);
        try {
            error(ex, 500, "internal error: " + e.getClass().getSimpleName());
        } catch (IOException | RuntimeException ignored) {
            // the answer had already begun
        }
    }

    private static void notAllowed(HttpExchange ex, String method) throws IOException {
        ex.getResponseHeaders().set("Allow", method);
        error(ex, 405, "use " + method + " for " + ex.getRequestURI().getPath());
    }

    /**
     * Reads and checks an image request and submits it. A request the service took is answered
     * when its image is done, by a thread of {@code responders}: the handler thread goes back to
     * reading requests, so waiting requests are bounded by the service's queue (429 beyond it)
     * and health and metrics never wait behind images.
     *
     * @return whether the answer comes later (the exchange stays open)
     */
    private boolean images(HttpExchange ex) throws IOException {
        byte[] body = readBody(ex);
        if (body == null) {
            error(ex, 400, "the body is larger than " + maxBodyBytes + " bytes");
            return false;
        }
        GenerationRequest request;
        try {
            request = parse(new String(body, StandardCharsets.UTF_8));
        } catch (BadRequest e) {
            error(ex, 400, e.getMessage());
            return false;
        }
        CompletableFuture<GeneratedImages> future;
        try {
            future = service.submit(request, requestTimeout);
        } catch (RequestRejectedException e) {
            switch (e.reason()) {
                case QUEUE_FULL -> retryLater(ex, 429, e.getMessage());
                case CLOSED -> retryLater(ex, 503, e.getMessage());
                default -> error(ex, 400, e.getMessage());
            }
            return false;
        } catch (IllegalArgumentException e) {
            error(ex, 400, e.getMessage());
            return false;
        }
        future.whenCompleteAsync((images, failure) -> answer(ex, images, failure), responders);
        return true;
    }

    private void answer(HttpExchange ex, GeneratedImages images, Throwable failure) {
        try {
            Throwable cause = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
            if (cause == null) {
                byte[] png = png(images);
                ex.getResponseHeaders().set("Content-Type", "image/png");
                ex.getResponseHeaders().set("X-Fora-Compute-Fraction", String.format(Locale.ROOT, "%.4f",
                        images.stats().computeFraction()));
                ex.getResponseHeaders().set("X-Fora-Flop-Speedup", String.format(Locale.ROOT, "%.3f",
                        images.stats().flopSpeedup()));
                ex.getResponseHeaders().set("X-Fora-Generation-Ms", String.format(Locale.ROOT, "%.1f",
                        images.elapsedNanos() / 1e6));
                ex.sendResponseHeaders(200, png.length);
                try (OutputStream out = ex.getResponseBody()) {
                    out.write(png);
                }
            } else if (cause instanceof GenerationCancelledException || cause instanceof CancellationException) {
                retryLater(ex, 503, cause.getMessage());
            } else if (cause instanceof NonFiniteOutputException) {
                error(ex, 500, cause.getMessage());
            } else if (cause instanceof IllegalArgumentException) {
                // a policy that parses but does not fit this model or step count (a step mask's length)
                error(ex, 400, "field \"policy\": " + cause.getMessage());
            } else {
                LOG.error("generation failed", cause);
                error(ex, 500, "generation failed: " + cause.getClass().getSimpleName());
            }
        } catch (IOException e) {
            LOG.debug("client connection failed: {}", e.toString());
        } catch (RuntimeException e) {
            internalError(ex, e);
        } finally {
            ex.close();
        }
    }

    /**
     * The body, or null if it is larger than allowed. An oversized body is still read, up to
     * {@link #DRAIN_LIMIT}, and dropped: a connection closed with unread data is reset, and the
     * client would see no answer.
     */
    private byte[] readBody(HttpExchange ex) throws IOException {
        try (InputStream in = ex.getRequestBody()) {
            byte[] got = in.readNBytes(maxBodyBytes + 1);
            if (got.length <= maxBodyBytes) {
                return got;
            }
            // read, not skip: the JDK's body stream passes skip() to the socket, past the body's end
            byte[] sink = new byte[65536];
            long left = DRAIN_LIMIT;
            int n;
            while (left > 0 && (n = in.read(sink, 0, (int) Math.min(sink.length, left))) > 0) {
                left -= n;
            }
            return null;
        }
    }

    /** The PNG {@code fora generate --images} writes for the first image. */
    private static byte[] png(GeneratedImages images) throws IOException {
        long[] s = images.shape();
        ImageBatch one = new ImageBatch(images.image(0), 1, (int) s[1], (int) s[2], (int) s[3]);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(new ImageGrid(1, 0).render(java.util.List.of(one), null), "png", out);
        return out.toByteArray();
    }

    /** A request body that cannot become a generation request; its message names the field. */
    static final class BadRequest extends Exception {
        private static final long serialVersionUID = 1L;

        BadRequest(String message) {
            super(message);
        }
    }

    /** The request a JSON body describes; every field but the conditioning has the CLI's default. */
    GenerationRequest parse(String body) throws BadRequest {
        JsonObject o = strictObject(body);
        for (String key : o.keySet()) {
            if (!FIELDS.contains(key)) {
                throw new BadRequest("unknown field \"" + clip(key) + "\" (fields: label, seed, steps, policy, sampler, cfg;"
                        + " prompt, or embedding and mask, for a text model)");
            }
        }
        GenerationRequest.Builder b;
        if (config.conditioning() instanceof ConditioningSpec.Classes classes) {
            if (o.has("embedding") || o.has("mask") || o.has("prompt")) {
                throw new BadRequest("\"prompt\", \"embedding\" and \"mask\" are for text models; this model takes a"
                        + " \"label\"");
            }
            if (!o.has("label")) {
                throw new BadRequest("missing field \"label\" (a class 0.." + (classes.count() - 1) + ")");
            }
            int label = (int) integer(o, "label", 0, classes.count() - 1);
            b = GenerationRequest.builder(label);
        } else {
            ConditioningSpec.Text text = (ConditioningSpec.Text) config.conditioning();
            if (o.has("label")) {
                throw new BadRequest("\"label\" is for class models; this text model takes \"prompt\", or \"embedding\""
                        + " (and \"mask\")");
            }
            b = GenerationRequest.builder(o.has("prompt") ? prompt(o) : embedding(o, text));
        }
        if (o.has("seed")) {
            b.seed(integer(o, "seed", Long.MIN_VALUE, Long.MAX_VALUE));
        }
        if (o.has("steps")) {
            b.steps((int) integer(o, "steps", 1, MAX_STEPS));
        }
        if (o.has("cfg")) {
            double cfg = number(o, "cfg");
            if (!(cfg >= 0) || cfg > 100) {
                throw new BadRequest("field \"cfg\" must be in 0..100, got " + cfg);
            }
            b.cfgScale(cfg);
        }
        String sampler = o.has("sampler") ? string(o, "sampler") : "ddim";
        try {
            b.sampler(SamplerKind.parse(sampler));
        } catch (IllegalArgumentException e) {
            throw new BadRequest("field \"sampler\": " + e.getMessage());
        }
        String policy = o.has("policy") ? string(o, "policy") : "fora:3";
        if (policy.length() > MAX_SPEC) {
            throw new BadRequest("field \"policy\" is longer than " + MAX_SPEC + " characters");
        }
        try {
            b.policy(CachePolicies.parse(policy));
        } catch (PolicySpecException e) {
            throw new BadRequest("field \"policy\": " + firstLine(e.getMessage()));
        }
        try {
            return b.build();
        } catch (IllegalArgumentException e) {
            throw new BadRequest(firstLine(e.getMessage()));
        }
    }

    /**
     * The body as a JSON object, read strictly: no comments, unquoted or single-quoted names, or
     * other leniencies, no text after the object, and no name twice (which value would count?).
     */
    private static JsonObject strictObject(String body) throws BadRequest {
        JsonObject o = new JsonObject();
        try (JsonReader reader = new JsonReader(new StringReader(body))) {
            reader.setStrictness(Strictness.STRICT);
            if (reader.peek() != JsonToken.BEGIN_OBJECT) {
                throw new BadRequest("the body must be a JSON object");
            }
            reader.beginObject();
            while (reader.hasNext()) {
                String name = reader.nextName();
                if (o.has(name)) {
                    throw new BadRequest("field \"" + clip(name) + "\" is given twice");
                }
                o.add(name, ELEMENT.read(reader));
            }
            reader.endObject();
            if (reader.peek() != JsonToken.END_DOCUMENT) {
                throw new BadRequest("the body holds more than one JSON value");
            }
        } catch (IOException | JsonParseException | IllegalStateException e) {
            throw new BadRequest("the body is not valid JSON: " + clip(JsonErrors.syntax(e)));
        }
        return o;
    }

    /** The prompt's embedding, by the model directory's text encoder. */
    private TextEmbeddings prompt(JsonObject o) throws BadRequest {
        if (o.has("embedding") || o.has("mask")) {
            throw new BadRequest("give \"prompt\" or \"embedding\" (and \"mask\"), not both");
        }
        String prompt = string(o, "prompt");
        if (prompt.isBlank() || prompt.length() > MAX_PROMPT) {
            throw new BadRequest("field \"prompt\" must be 1.." + MAX_PROMPT + " characters, not blank");
        }
        if (encoder == null) {
            throw new BadRequest("this model directory has no text encoder (fora_tools.export_t5 adds one); send"
                    + " \"embedding\" instead of \"prompt\"");
        }
        synchronized (encoder) { // one prompt at a time through the tokenizer and the encoder
            return encoder.encode(java.util.List.of(prompt));
        }
    }

    private static TextEmbeddings embedding(JsonObject o, ConditioningSpec.Text text) throws BadRequest {
        if (!o.has("embedding")) {
            throw new BadRequest("missing field \"prompt\" (or \"embedding\": " + text.tokens() + " rows of " + text.width()
                    + " numbers)");
        }
        JsonElement e = o.get("embedding");
        if (!e.isJsonArray() || e.getAsJsonArray().size() != text.tokens()) {
            throw new BadRequest("field \"embedding\" must be " + text.tokens() + " rows of " + text.width() + " numbers");
        }
        float[] values = new float[text.tokens() * text.width()];
        int k = 0;
        for (JsonElement row : e.getAsJsonArray()) {
            if (!row.isJsonArray() || row.getAsJsonArray().size() != text.width()) {
                throw new BadRequest("field \"embedding\" must be " + text.tokens() + " rows of " + text.width() + " numbers");
            }
            for (JsonElement v : row.getAsJsonArray()) {
                float f = v.isJsonPrimitive() && v.getAsJsonPrimitive().isNumber() ? v.getAsFloat() : Float.NaN;
                if (!Float.isFinite(f)) {
                    throw new BadRequest("field \"embedding\" holds a value that is not a finite number");
                }
                values[k++] = f;
            }
        }
        boolean[] mask = new boolean[text.tokens()];
        if (o.has("mask")) {
            JsonElement m = o.get("mask");
            if (!m.isJsonArray() || m.getAsJsonArray().size() != text.tokens()) {
                throw new BadRequest("field \"mask\" must be " + text.tokens() + " values 0 or 1");
            }
            JsonArray a = m.getAsJsonArray();
            for (int i = 0; i < mask.length; i++) {
                JsonElement v = a.get(i);
                if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isNumber()
                        || (v.getAsDouble() != 0 && v.getAsDouble() != 1)) {
                    throw new BadRequest("field \"mask\" must be " + text.tokens() + " values 0 or 1");
                }
                mask[i] = v.getAsDouble() == 1;
            }
        } else {
            java.util.Arrays.fill(mask, true);
        }
        return new TextEmbeddings(text.tokens(), text.width(), values, mask);
    }

    private static long integer(JsonObject o, String field, long min, long max) throws BadRequest {
        JsonElement e = o.get(field);
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
            throw new BadRequest("field \"" + field + "\" must be an integer");
        }
        java.math.BigDecimal v;
        try {
            v = e.getAsBigDecimal();
        } catch (NumberFormatException ex) {
            throw new BadRequest("field \"" + field + "\" must be an integer");
        }
        if (v.stripTrailingZeros().scale() > 0) {
            throw new BadRequest("field \"" + field + "\" must be an integer, got " + clip(e.toString()));
        }
        if (v.compareTo(java.math.BigDecimal.valueOf(min)) < 0 || v.compareTo(java.math.BigDecimal.valueOf(max)) > 0) {
            throw new BadRequest("field \"" + field + "\" must be in " + min + ".." + max + ", got " + clip(e.toString()));
        }
        return v.longValueExact();
    }

    private static double number(JsonObject o, String field) throws BadRequest {
        JsonElement e = o.get(field);
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
            throw new BadRequest("field \"" + field + "\" must be a number");
        }
        double v = e.getAsDouble();
        if (!Double.isFinite(v)) {
            throw new BadRequest("field \"" + field + "\" must be a finite number");
        }
        return v;
    }

    private static String string(JsonObject o, String field) throws BadRequest {
        JsonElement e = o.get(field);
        if (!(e instanceof JsonPrimitive p) || !p.isString()) {
            throw new BadRequest("field \"" + field + "\" must be a string");
        }
        return p.getAsString();
    }

    private static Map<String, Object> metrics(ServiceStats s) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("requests_submitted", s.submitted());
        m.put("requests_completed", s.completed());
        m.put("requests_failed", s.failed());
        m.put("requests_cancelled", s.cancelled());
        m.put("requests_rejected", s.rejected());
        m.put("queue_depth", s.queued());
        m.put("requests_running", s.running());
        m.put("passes", s.passes());
        m.put("rows_per_pass", s.meanRowsPerPass());
        m.put("images_per_s", s.imagesPerSecond());
        m.put("latency_p50_ms", s.latencyP50Ms());
        m.put("latency_p95_ms", s.latencyP95Ms());
        m.put("cache_bytes", s.cacheBytes());
        return m;
    }

    private static void retryLater(HttpExchange ex, int status, String message) throws IOException {
        ex.getResponseHeaders().set("Retry-After", "1");
        error(ex, status, message);
    }

    private static void error(HttpExchange ex, int status, String message) throws IOException {
        json(ex, status, Map.of("error", message == null ? "(no message)" : firstLine(message)));
    }

    private static void json(HttpExchange ex, int status, Object value) throws IOException {
        byte[] bytes = GSON.toJson(value).getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
        ex.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(bytes);
        }
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return clip(nl < 0 ? s : s.substring(0, nl));
    }

    /** Echoes of client input stay short. */
    private static String clip(String s) {
        return s.length() <= 120 ? s : s.substring(0, 117) + "...";
    }
}
