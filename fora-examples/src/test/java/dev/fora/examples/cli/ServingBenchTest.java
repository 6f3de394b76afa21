package dev.fora.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.NoCache;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code fora bench --clients}: the three paths on the same images, and the JSON the docs' numbers come from. */
class ServingBenchTest {

    @TempDir
    Path tmp;

    @Test
    void clientsBenchRunsThePathsOnTheSameImagesAndWritesItsJson() throws Exception {
        Path json = tmp.resolve("serving.json");
        CommandsTest.Result r = CommandsTest.ok(CommandsTest.args("bench", "--model", TestModels.model(), "--clients", 3,
                "--requests", 2, "--steps", 6, "--mix-steps", "4,6", "--policy", "fora:2,fbcache:0.1", "--repeats", 1,
                "--warmup", 0, "--json", json, "--quiet"));
        assertThat(r.out()).contains("continuous batching", "one at a time", "static batches of 3");
        JsonObject o = JsonParser.parseString(Files.readString(json)).getAsJsonObject();
        assertThat(o.get("clients").getAsInt()).isEqualTo(3);
        assertThat(o.get("images").getAsInt()).isEqualTo(6);
        for (String f : new String[] {"continuous_images_per_s", "one_at_a_time_images_per_s", "static_batch_images_per_s",
            "latency_p50_ms", "latency_p95_ms"}) {
            assertThat(o.get(f).getAsDouble()).as(f).isPositive();
        }
        assertThat(o.get("max_pixel_diff_vs_alone").getAsInt()).isBetween(0, 1);
        // the ratios pair the paths within a round: with one round, that round's own ratios
        JsonObject round = o.getAsJsonArray("rounds").get(0).getAsJsonObject();
        assertThat(o.getAsJsonArray("rounds")).hasSize(1);
        assertThat(o.get("continuous_vs_static_batch").getAsDouble()).isEqualTo(
                round.get("continuous_images_per_s").getAsDouble() / round.get("static_batch_images_per_s").getAsDouble());
        assertThat(o.get("continuous_vs_one_at_a_time").getAsDouble()).isEqualTo(
                round.get("continuous_images_per_s").getAsDouble() / round.get("one_at_a_time_images_per_s").getAsDouble());
        assertThat(o.get("latency_p95_vs_static_batch_wall").isJsonNull()).as("no full static batch in a mix").isTrue();
        // a mix is also served beside the uniform run (the first policy at --steps), round by round
        assertThat(o.get("uniform_policy").getAsString()).isEqualTo("fora:2");
        assertThat(o.get("uniform_steps").getAsInt()).isEqualTo(6);
        assertThat(o.get("continuous_vs_uniform").getAsDouble()).isEqualTo(
                round.get("continuous_images_per_s").getAsDouble() / round.get("uniform_continuous_images_per_s").getAsDouble());
        assertThat(r.out()).contains("continuous / uniform run");
        assertThat(o.getAsJsonArray("steps_mix")).hasSize(2);
        assertThat(o.getAsJsonArray("policy_mix")).hasSize(2);
        assertThat(o.getAsJsonObject("host").has("avx512_bf16")).isTrue();
    }

    @Test
    void aUniformClientsBenchHasNoUniformRunBesideIt() throws Exception {
        Path json = tmp.resolve("uniform.json");
        CommandsTest.Result r = CommandsTest.ok(CommandsTest.args("bench", "--model", TestModels.model(), "--clients", 2,
                "--requests", 1, "--steps", 4, "--policy", "fora:2", "--repeats", 1, "--warmup", 0, "--json", json, "--quiet"));
        JsonObject o = JsonParser.parseString(Files.readString(json)).getAsJsonObject();
        assertThat(o.has("continuous_vs_uniform")).isFalse();
        assertThat(r.out()).doesNotContain("the uniform run beside it");
    }

    @Test
    void everyClientSendsTheWholeMixAndEachRoundOfRequestsHoldsItToo() {
        Map<String, CachePolicy> policies = new LinkedHashMap<>();
        policies.put("a", NoCache.INSTANCE);
        policies.put("b", NoCache.INSTANCE);
        int clients = 8;
        int perClient = 8;
        List<ClientsBench.Image> images = ClientsBench.images(clients, perClient, 10, 100, policies, new int[] {20, 50});
        assertThat(images).hasSize(clients * perClient);
        // image k is request k / clients of client k % clients
        for (int c = 0; c < clients; c++) {
            Map<String, Integer> pairs = new HashMap<>();
            for (int i = 0; i < perClient; i++) {
                ClientsBench.Image im = images.get(i * clients + c);
                pairs.merge(im.spec() + "@" + im.steps(), 1, Integer::sum);
            }
            assertThat(pairs).as("client " + c).containsOnlyKeys("a@20", "b@20", "a@50", "b@50").allSatisfy((k, n) -> assertThat(n).isEqualTo(2));
        }
        for (int i = 0; i < perClient; i++) {
            int steps = 0;
            for (int c = 0; c < clients; c++) {
                steps += images.get(i * clients + c).steps();
            }
            assertThat(steps).as("request " + i + " of every client").isEqualTo(4 * 20 + 4 * 50);
        }
        assertThat(images.get(13).seed()).isEqualTo(113);
        assertThat(images.get(13).label()).isEqualTo(3);
    }
}
