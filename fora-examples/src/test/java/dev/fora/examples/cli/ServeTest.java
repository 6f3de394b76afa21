package dev.fora.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.djl.DiTPipeline;
import dev.fora.djl.GenerationService;
import dev.fora.examples.Main;
import dev.fora.examples.serve.ImageServer;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code fora serve}'s HTTP contract, on loopback with the JDK's client. */
class ServeTest {

    @TempDir
    Path tmp;

    private final HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    private HttpResponse<byte[]> post(ImageServer server, String body) throws Exception {
        return client.send(HttpRequest.newBuilder(URI.create(server.url() + "/v1/images"))
                .timeout(Duration.ofSeconds(120)).POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofByteArray());
    }

    private static String error(HttpResponse<byte[]> r) {
        JsonObject o = JsonParser.parseString(new String(r.body(), StandardCharsets.UTF_8)).getAsJsonObject();
        return o.get("error").getAsString();
    }

    @Test
    void answersThePixelsFormGenerateWritesAndFourHundredForEveryKindOfBadInput() throws Exception {
        Path model = TestModels.model();
        CommandsTest.ok(CommandsTest.args("generate", "--model", model, "--labels", "3", "--seed", 7, "--steps", 12,
                "--policy", "fora:3", "--sampler", "ddim", "--cfg", 1.5, "--images", tmp, "--out", tmp.resolve("g.png"),
                "--quiet"));
        byte[] expected = Files.readAllBytes(tmp.resolve("image_0.png"));
        try (DiTPipeline p = DiTPipeline.load(model);
             GenerationService service = GenerationService.builder(p).build();
             ImageServer server = new ImageServer(service, p.config(), null, "127.0.0.1", 0, 4, 4096, Duration.ofSeconds(60))) {
            assertThat(server.url()).startsWith("http://127.0.0.1:");
            HttpResponse<byte[]> ok = post(server,
                    "{\"label\": 3, \"seed\": 7, \"steps\": 12, \"policy\": \"fora:3\", \"sampler\": \"ddim\", \"cfg\": 1.5}");
            assertThat(ok.statusCode()).isEqualTo(200);
            assertThat(ok.headers().firstValue("Content-Type")).hasValue("image/png");
            assertThat(ok.body()).as("the PNG fora generate --images writes").isEqualTo(expected);
            assertThat(Double.parseDouble(ok.headers().firstValue("X-Fora-Compute-Fraction").orElseThrow()))
                    .isEqualTo(5.0 / 12, org.assertj.core.data.Offset.offset(1e-4));
            assertThat(ok.headers().firstValue("X-Fora-Generation-Ms")).isPresent();

            Map<String, String> bad = Map.ofEntries(
                    Map.entry("{\"label\": 3,", "not valid JSON"),
                    Map.entry("[3]", "JSON object"),
                    Map.entry("{\"label\": 3, \"path\": \"/etc/passwd\"}", "unknown field \"path\""),
                    Map.entry("{\"label\": 3, \"model\": \"x\"}", "unknown field \"model\""),
                    Map.entry("{\"seed\": 1}", "missing field \"label\""),
                    Map.entry("{\"label\": 10}", "\"label\" must be in 0..9"),
                    Map.entry("{\"label\": 1.5}", "\"label\" must be an integer"),
                    Map.entry("{\"label\": \"3\"}", "\"label\" must be an integer"),
                    Map.entry("{\"label\": 3, \"steps\": 0}", "\"steps\" must be in 1..1000"),
                    Map.entry("{\"label\": 3, \"seed\": 1e30}", "\"seed\" must be in"),
                    Map.entry("{\"label\": 3, \"cfg\": -1}", "\"cfg\" must be in 0..100"),
                    Map.entry("{\"label\": 3, \"policy\": \"fora:0\"}", "field \"policy\""),
                    Map.entry("{\"label\": 3, \"policy\": 3}", "\"policy\" must be a string"),
                    Map.entry("{\"label\": 3, \"sampler\": \"euler\"}", "field \"sampler\""),
                    Map.entry("{\"label\": 3, \"embedding\": [[1]]}", "for text models"),
                    Map.entry("{\"label\": 3, \"prompt\": \"a cat\"}", "for text models"),
                    Map.entry("{\"label\": 3, \"seed\": " + "1".repeat(5000) + "}", "larger than 4096 bytes"),
                    // a body far over the limit is still read, so the 400 arrives instead of a reset
                    Map.entry("{\"label\": 3, \"x\": \"" + "y".repeat(3_000_000) + "\"}", "larger than 4096 bytes"),
                    // strict JSON: none of Gson's leniencies, and no name twice
                    Map.entry("{label: 3}", "not valid JSON: malformed JSON at line 1"),
                    Map.entry("{'label': 3}", "not valid JSON"),
                    Map.entry("{\"label\": 3 /* c */}", "not valid JSON"),
                    Map.entry("{\"label\": 3; \"steps\": 1}", "not valid JSON"),
                    Map.entry("{\"label\": 3, \"label\": 4}", "field \"label\" is given twice"),
                    Map.entry("{\"label\": 3} {}", "not valid JSON"),
                    // a policy that parses but does not fit the request's step count
                    Map.entry("{\"label\": 3, \"steps\": 5, \"policy\": \"mask:1\"}", "field \"policy\": step mask has 1"));
            for (Map.Entry<String, String> b : bad.entrySet()) {
                HttpResponse<byte[]> r = post(server, b.getKey());
                assertThat(r.statusCode()).as(b.getValue()).isEqualTo(400);
                assertThat(error(r)).as(b.getKey().substring(0, Math.min(40, b.getKey().length())))
                        .contains(b.getValue());
            }
            HttpResponse<byte[]> get = client.send(HttpRequest.newBuilder(URI.create(server.url() + "/v1/images")).build(),
                    HttpResponse.BodyHandlers.ofByteArray());
            assertThat(get.statusCode()).isEqualTo(405);
            assertThat(get.headers().firstValue("Allow")).hasValue("POST");
            HttpResponse<byte[]> none = client.send(HttpRequest.newBuilder(URI.create(server.url() + "/v2/x")).build(),
                    HttpResponse.BodyHandlers.ofByteArray());
            assertThat(none.statusCode()).isEqualTo(404);
            HttpResponse<String> health = client.send(HttpRequest.newBuilder(URI.create(server.url() + "/v1/health")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(health.statusCode()).isEqualTo(200);
            HttpResponse<String> metrics = client.send(HttpRequest.newBuilder(URI.create(server.url() + "/v1/metrics"))
                    .build(), HttpResponse.BodyHandlers.ofString());
            JsonObject m = JsonParser.parseString(metrics.body()).getAsJsonObject();
            assertThat(m.get("requests_completed").getAsLong()).isEqualTo(1);
            assertThat(m.get("requests_failed").getAsLong()).as("the mask that does not fit").isEqualTo(1);
            assertThat(m.keySet()).contains("images_per_s", "rows_per_pass", "queue_depth", "latency_p50_ms",
                    "latency_p95_ms", "cache_bytes");
            // the server still serves after all that
            assertThat(post(server, "{\"label\": 1, \"steps\": 3}").statusCode()).isEqualTo(200);
        }
    }

    @Test
    void underOverloadEveryRequestIsAnsweredWithTheImageOr429() throws Exception {
        try (DiTPipeline p = DiTPipeline.load(TestModels.model());
             GenerationService service = GenerationService.builder(p).maxRows(2).queueCapacity(1).build();
             ImageServer server = new ImageServer(service, p.config(), null, "127.0.0.1", 0, 16, 4096, Duration.ofSeconds(60))) {
            List<CompletableFuture<HttpResponse<byte[]>>> sent = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                sent.add(client.sendAsync(HttpRequest.newBuilder(URI.create(server.url() + "/v1/images"))
                        .timeout(Duration.ofSeconds(120))
                        .POST(HttpRequest.BodyPublishers.ofString("{\"label\": " + (i % 10) + ", \"steps\": 40}")).build(),
                        HttpResponse.BodyHandlers.ofByteArray()));
            }
            int images = 0;
            int busy = 0;
            for (CompletableFuture<HttpResponse<byte[]>> f : sent) {
                HttpResponse<byte[]> r = f.get(120, TimeUnit.SECONDS); // never unanswered
                if (r.statusCode() == 200) {
                    images++;
                } else {
                    assertThat(r.statusCode()).isEqualTo(429);
                    assertThat(r.headers().firstValue("Retry-After")).isPresent();
                    assertThat(error(r)).contains("queue is full");
                    busy++;
                }
            }
            assertThat(images + busy).isEqualTo(12);
            assertThat(images).isGreaterThanOrEqualTo(2);
            assertThat(busy).isPositive();
            assertThat(post(server, "{\"label\": 1, \"steps\": 3}").statusCode()).isEqualTo(200);
        }
    }

    @Test
    void theQueueBoundsTheWaitingRequestsWhateverTheHandlerThreadsAndHealthNeverWaitsBehindImages() throws Exception {
        // two handler threads: if they waited for images, the requests beyond them would queue
        // in the HTTP server unbounded instead of getting 429, and health would wait behind them
        try (DiTPipeline p = DiTPipeline.load(TestModels.model());
             GenerationService service = GenerationService.builder(p).maxRows(2).queueCapacity(1).build();
             ImageServer server = new ImageServer(service, p.config(), null, "127.0.0.1", 0, 2, 4096, Duration.ofSeconds(60))) {
            List<CompletableFuture<HttpResponse<byte[]>>> sent = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                sent.add(client.sendAsync(HttpRequest.newBuilder(URI.create(server.url() + "/v1/images"))
                        .timeout(Duration.ofSeconds(120))
                        .POST(HttpRequest.BodyPublishers.ofString("{\"label\": " + i + ", \"steps\": 200}")).build(),
                        HttpResponse.BodyHandlers.ofByteArray()));
            }
            HttpResponse<String> health = client.send(HttpRequest.newBuilder(URI.create(server.url() + "/v1/health"))
                    .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(health.statusCode()).isEqualTo(200);
            int busy = 0;
            for (CompletableFuture<HttpResponse<byte[]>> f : sent) {
                int status = f.get(120, TimeUnit.SECONDS).statusCode();
                assertThat(status).isIn(200, 429);
                busy += status == 429 ? 1 : 0;
            }
            assertThat(busy).as("requests beyond one running and one queued").isGreaterThanOrEqualTo(5);
        }
    }

    @Test
    void theCommandPrintsWhereItListensAndSigtermExitsZero() throws Exception {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process process = new ProcessBuilder(java.toString(), "-Xmx512m", "-Dai.djl.offline=true",
                "-Dai.djl.pytorch.num_threads=1", "-Dai.djl.pytorch.num_interop_threads=1",
                "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "serve", "--model", TestModels.model().toAbsolutePath().toString(), "--port", "0", "--join-window", "5")
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try (BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line = out.readLine();
            assertThat(line).matches("listening on http://127\\.0\\.0\\.1:\\d+");
            URI url = URI.create(line.substring("listening on ".length()) + "/v1/images");
            CompletableFuture<HttpResponse<byte[]>> running = client.sendAsync(HttpRequest.newBuilder(url)
                    .POST(HttpRequest.BodyPublishers.ofString("{\"label\": 2, \"steps\": 200}")).build(),
                    HttpResponse.BodyHandlers.ofByteArray());
            Thread.sleep(1000);
            process.toHandle().destroy(); // SIGTERM
            assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertThat(process.exitValue()).isZero();
            assertThat(running.get(10, TimeUnit.SECONDS).statusCode()).as("the running request finished").isEqualTo(200);
        } finally {
            process.destroyForcibly();
        }
    }

    @Test
    void aTextModelTakesAPromptAndAnswersThePixelsOfGenerateWithThatPrompt() throws Exception {
        Path model = FamiliesCliTest.PIXART;
        CommandsTest.ok(CommandsTest.args("generate", "--model", model, "--prompt", "a red square", "--seed", 5, "--steps", 4,
                "--sampler", "dpm-solver++", "--cfg", 4.5, "--policy", "fora:2", "--images", tmp, "--out",
                tmp.resolve("g.png"), "--quiet"));
        byte[] expected = Files.readAllBytes(tmp.resolve("image_0.png"));
        try (DiTPipeline p = DiTPipeline.load(model);
             dev.fora.djl.TextEncoder encoder = dev.fora.djl.TextEncoder.load(model);
             GenerationService service = GenerationService.builder(p).build();
             ImageServer server = new ImageServer(service, p.config(), encoder, "127.0.0.1", 0, 2, 1 << 20,
                     Duration.ofSeconds(60))) {
            HttpResponse<byte[]> ok = post(server, "{\"prompt\": \"a red square\", \"seed\": 5, \"steps\": 4,"
                    + " \"sampler\": \"dpm-solver++\", \"cfg\": 4.5, \"policy\": \"fora:2\"}");
            assertThat(ok.statusCode()).as(new String(ok.body(), StandardCharsets.UTF_8)).isEqualTo(200);
            assertThat(ok.body()).isEqualTo(expected);
            assertThat(error(post(server, "{\"label\": 1}"))).contains("takes \"prompt\"");
            assertThat(error(post(server, "{\"prompt\": \" \"}"))).contains("not blank");
            assertThat(error(post(server, "{\"prompt\": \"x\", \"mask\": [1]}"))).contains("not both");
        }
    }
}
