package dev.fora.examples.cli;

import dev.fora.djl.GenerationService;
import dev.fora.djl.ModelLoadException;
import dev.fora.djl.TextEncoder;
import dev.fora.examples.engine.Generator;
import dev.fora.examples.serve.ImageServer;
import java.io.IOException;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;
import sun.misc.Signal;

/** {@code fora serve}: an HTTP server over one loaded model, batching concurrent requests step by step. */
@Command(name = "serve", sortOptions = false, mixinStandardHelpOptions = true,
        description = {"Serve images over HTTP from one loaded model with continuous batching.",
                "POST /v1/images with {\"label\": 3, \"seed\": 7, \"steps\": 50, \"policy\": \"fora:3\", \"sampler\": \"ddim\","
                + " \"cfg\": 1.5} answers the PNG that 'fora generate --labels 3 --seed 7 ... --images DIR' writes to"
                + " DIR/image_0.png; GET /v1/health, GET /v1/metrics.",
                "Prints 'listening on http://HOST:PORT' when ready; SIGINT or SIGTERM finishes what runs and exits 0."},
        footer = {"", "See docs/serving.md for the JSON fields, the answers and the limits."})
public final class ServeCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--host", paramLabel = "HOST", defaultValue = "127.0.0.1",
            description = "Address to bind (default: ${DEFAULT-VALUE}, loopback only).")
    String host;

    @Option(names = "--port", paramLabel = "PORT", defaultValue = "8080",
            description = "Port to bind; 0 picks a free one (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--max-rows", paramLabel = "N", defaultValue = "16",
            description = "Most batch rows per model pass; a CFG-guided image is 2 (default: ${DEFAULT-VALUE}).")
    int maxRows;

    @Option(names = "--queue", paramLabel = "N", defaultValue = "64",
            description = "Requests that may wait for the model, at least 1; more get 429 (default: ${DEFAULT-VALUE}).")
    int queue;

    @Option(names = "--join-window", paramLabel = "MS", defaultValue = "3",
            description = "How long a pass may wait for requests about to arrive, so that clients which send their next"
                    + " request as the last ends start together; 0 = never wait (default: ${DEFAULT-VALUE}).")
    int joinWindowMs;

    @Option(names = "--http-threads", paramLabel = "N", defaultValue = "32",
            description = "Threads that read requests, and as many that write the images' answers (default: "
                    + "${DEFAULT-VALUE}). A client that sends slowly holds a reading thread until it is done.")
    int httpThreads;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "300",
            description = "Longest time one request may take before it gets 503 (default: ${DEFAULT-VALUE}).")
    int timeoutSeconds;

    /** A body is held in memory whole: 256 MiB is far past any request (a text model's embedding is a few MB). */
    static final int MAX_BODY = 256 << 20;

    @Option(names = "--max-body", paramLabel = "BYTES", defaultValue = "4194304",
            description = "Largest request body (default: ${DEFAULT-VALUE}; a text model's embedding is the big one).")
    int maxBody;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() {
        Checks.atLeast("--max-rows", maxRows, 1);
        Checks.atLeast("--queue", queue, 1);
        Checks.atLeast("--join-window", joinWindowMs, 0);
        Checks.atLeast("--http-threads", httpThreads, 1);
        Checks.atLeast("--timeout", timeoutSeconds, 1);
        Checks.atLeast("--max-body", maxBody, 2);
        if (maxBody > MAX_BODY) {
            throw new CliException(ExitCodes.USAGE, "--max-body must be at most " + MAX_BODY + " bytes, got " + maxBody);
        }
        if (port < 0 || port > 65535) {
            throw new CliException(ExitCodes.USAGE, "--port must be in 0..65535, got " + port);
        }
        CountDownLatch stop = new CountDownLatch(1);
        // A signal stops the server in order and the command exits 0, instead of the JVM's 130/143.
        Signal.handle(new Signal("INT"), s -> stop.countDown());
        Signal.handle(new Signal("TERM"), s -> stop.countDown());
        PrintWriter out = spec.commandLine().getOut();
        try (Generator generator = common.load();
             TextEncoder encoder = textEncoder(generator);
             GenerationService service = GenerationService.builder(generator.pipeline()).maxRows(maxRows)
                     .queueCapacity(queue).joinWindow(Duration.ofMillis(joinWindowMs)).build()) {
            ImageServer server;
            try {
                server = new ImageServer(service, generator.config(), encoder, host, port, httpThreads, maxBody,
                        Duration.ofSeconds(timeoutSeconds));
            } catch (IOException e) {
                throw new CliException(ExitCodes.OUTPUT, "cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
            }
            out.println("listening on " + server.url());
            out.flush();
            try {
                stop.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            out.println("stopping: finishing the requests that run");
            out.flush();
            service.drain(Duration.ofSeconds(30));
            server.stop(Duration.ofSeconds(1));
        }
        return ExitCodes.OK;
    }

    /** The model directory's text encoder, if it has one (for requests with a "prompt"), else null. */
    private static TextEncoder textEncoder(Generator generator) {
        if (generator.manifest().file(TextEncoder.FILE_ROLE).isEmpty()) {
            return null;
        }
        try {
            return TextEncoder.load(generator.directory());
        } catch (ModelLoadException e) {
            throw new CliException(ExitCodes.MODEL, "cannot load the text encoder: " + e.getMessage(), e);
        }
    }
}
