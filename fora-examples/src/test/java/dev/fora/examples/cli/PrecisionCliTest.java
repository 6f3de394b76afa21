package dev.fora.examples.cli;

import static dev.fora.examples.cli.CommandsTest.args;
import static dev.fora.examples.cli.CommandsTest.ok;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.djl.NativeAllocator;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code --dtype int8} end to end, and the host CPU and allocator every bench number carries. */
class PrecisionCliTest {

    @TempDir
    Path tmp;

    @Test
    void benchRunsTheInt8VariantAndReportsTheHostCpu() throws Exception {
        Path json = tmp.resolve("int8.json");
        CommandsTest.Result r = ok(args("bench", "--model", TestModels.model(), "--dtype", "int8", "--steps", 4,
                "--batch", 2, "--repeats", 1, "--warmup", 0, "--policy", "fora:2", "--json", json, "--quiet"));
        Map<String, Object> host = Host.describe();
        assertThat(r.out()).contains("dtype int8", "host " + host);
        JsonArray a = JsonParser.parseString(Files.readString(json)).getAsJsonArray();
        for (int i = 0; i < a.size(); i++) {
            JsonObject o = a.get(i).getAsJsonObject();
            assertThat(o.get("dtype").getAsString()).isEqualTo("int8");
            JsonObject h = o.getAsJsonObject("host");
            assertThat(h.get("cpu").getAsString()).isEqualTo(host.get("cpu"));
            for (String flag : List.of("avx512_bf16", "amx_bf16", "avx512_vnni")) {
                assertThat(h.get(flag).getAsBoolean()).as(flag).isEqualTo(host.get(flag));
            }
            assertThat(h.get("malloc").getAsString()).isEqualTo(host.get("malloc"));
            assertThat(o.keySet()).contains("speedup_vs_whole_model", "cached_step_cost");
        }
        // int8 computes what the whole-model int8 forward computes, through the cache's float32 features
        assertThat(a.get(1).getAsJsonObject().get("max_abs_diff_components_vs_whole_model").getAsDouble()).isLessThan(1e-3);
    }

    @Test
    void mallocKeepIsAppliedAndRecorded() throws Exception {
        Path json = tmp.resolve("keep.json");
        ok(args("bench", "--model", TestModels.model(), "--malloc", "keep", "--steps", 4, "--batch", 2, "--repeats", 1,
                "--warmup", 0, "--policy", "fora:2", "--json", json, "--quiet"));
        String recorded = JsonParser.parseString(Files.readString(json)).getAsJsonArray().get(0).getAsJsonObject()
                .getAsJsonObject("host").get("malloc").getAsString();
        // idempotent: true when the command applied it (glibc, no allocator settings in the environment)
        if (NativeAllocator.keepFreedMemory()) {
            assertThat(recorded).startsWith("mallopt mmap_threshold=");
        } else {
            assertThat(recorded).isEqualTo(NativeAllocator.describe());
        }
    }

    @Test
    void benchInterleavesSeveralDtypesAndComparesThemPathByPath() throws Exception {
        Path json = tmp.resolve("both.json");
        CommandsTest.Result r = ok(args("bench", "--model", TestModels.model(), "--dtype", "fp32,int8", "--steps", 4,
                "--batch", 2, "--repeats", 1, "--warmup", 0, "--policy", "fora:2", "--json", json, "--quiet"));
        assertThat(r.out()).contains("dtype fp32", "dtype int8", "number formats side by side", "int8 vs fp32");
        JsonArray a = JsonParser.parseString(Files.readString(json)).getAsJsonArray();
        assertThat(a.size()).isEqualTo(4); // none and fora:2, per dtype
        for (int i = 0; i < a.size(); i++) {
            JsonObject o = a.get(i).getAsJsonObject();
            String dtype = o.get("dtype").getAsString();
            assertThat(dtype).isEqualTo(i < 2 ? "fp32" : "int8");
            assertThat(o.has("speedup_vs_fp32")).as(dtype).isEqualTo(i >= 2);
            assertThat(o.getAsJsonArray("ms_per_image_whole_model_rounds").get(0).getAsDouble())
                    .isEqualTo(o.getAsJsonObject("ms_per_image_whole_model_stats").get("median").getAsDouble());
            if (i >= 2) {
                JsonObject fp32 = a.get(i - 2).getAsJsonObject();
                assertThat(o.get("policy").getAsString()).isEqualTo(fp32.get("policy").getAsString());
                assertThat(o.get("speedup_vs_fp32").getAsDouble()).isCloseTo(
                        fp32.get("ms_per_image_cached").getAsDouble() / o.get("ms_per_image_cached").getAsDouble(),
                        org.assertj.core.data.Offset.offset(1e-9));
            }
        }
    }

    @Test
    void benchRejectsADtypeNamedTwice() throws Exception {
        CommandsTest.Result r = CommandsTest.run(args("bench", "--model", TestModels.model(), "--dtype", "fp32,fp32",
                "--steps", 2, "--batch", 1, "--repeats", 1, "--warmup", 0, "--quiet"));
        assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
        assertThat(r.err()).contains("--dtype names fp32 twice");
    }
}
