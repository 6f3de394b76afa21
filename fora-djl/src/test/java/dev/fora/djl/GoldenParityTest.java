package dev.fora.djl;

import static dev.fora.djl.Goldens.ints;
import static dev.fora.djl.Goldens.maxAbsDiff;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonObject;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.engine.Generation;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.model.Conditioning;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.Modulation;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.DenoisingModel;
import dev.fora.core.sampling.ReplayNoise;
import dev.fora.core.tensor.TensorOps;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Parity with the Python reference ({@code fora_tools.goldens}): every stage of one CFG step
 * within 1e-4, the stage-by-stage path against the whole-model TorchScript within 1e-4, and
 * whole 50-step trajectories (DDIM uncached, DDIM FORA N=3, DDPM FORA N=3 with replayed
 * noise) within 1e-3.
 */
class GoldenParityTest {

    static final double COMPONENT_BOUND = 1e-4;
    static final double SAMPLE_BOUND = 1e-3;

    @Test
    void everyStageMatchesTheReference() throws Exception {
        Goldens g = Goldens.forModel(TestModels.modelDir());
        DiTPipeline pipeline = TestModels.pipeline();
        JsonObject comp = g.components();
        JsonObject outs = comp.getAsJsonObject("outputs");
        Conditioning labels = ClassLabels.of(ints(comp.get("labels_in")));
        String xName = comp.getAsJsonObject("inputs").get("x").getAsString();
        float[] t = g.array(comp.getAsJsonObject("inputs").get("t").getAsString());
        Map<String, Double> diffs = new LinkedHashMap<>();
        int depth = pipeline.config().depth();
        try (TorchScriptDiT dit = pipeline.newDiT()) {
            NDArrayOps ops = dit.ops();
            NDTensor x = ops.fromFloats(g.shape(xName), g.array(xName));
            Embedding<NDTensor> e = dit.embed(x, t, labels);
            diffs.put("tokens", diff(g, ops, outs.get("tokens").getAsString(), e.tokens()));
            diffs.put("c", diff(g, ops, outs.get("c").getAsString(), e.conditioning()));

            List<Modulation<NDTensor>> mods = dit.modulations(e);
            String modName = outs.get("modulation").getAsString();
            float[] goldMods = g.array(modName);
            long[] modShape = g.shape(modName);
            assertThat(modShape).containsExactly(depth, 6, labels.size(), pipeline.config().hiddenSize());
            int per = labels.size() * pipeline.config().hiddenSize();
            double modDiff = 0;
            for (int b = 0; b < depth; b++) {
                Modulation<NDTensor> m = mods.get(b);
                assertThat(m.vectors()).hasSize(6);
                for (int k = 0; k < 6; k++) {
                    float[] want = new float[per];
                    System.arraycopy(goldMods, (b * 6 + k) * per, want, 0, per);
                    modDiff = Math.max(modDiff, maxAbsDiff(ops.toFloats(m.vector(k)), want));
                }
            }
            diffs.put("modulation", modDiff);

            NDTensor h = e.tokens();
            for (int b = 0; b < depth; b++) {
                Modulation<NDTensor> m = mods.get(b);
                String key = Integer.toString(b);
                if (outs.getAsJsonObject("attention_input").has(key)) {
                    diffs.put("attention_input[" + b + "]", diff(g, ops,
                            outs.getAsJsonObject("attention_input").get(key).getAsString(), h));
                }
                NDTensor a = dit.branch(b, 0, h, m, e);
                if (outs.getAsJsonObject("attention").has(key)) {
                    diffs.put("attention[" + b + "]", diff(g, ops, outs.getAsJsonObject("attention").get(key).getAsString(), a));
                }
                NDTensor h1 = dit.addBranch(0, h, m, a);
                if (outs.getAsJsonObject("mlp_input").has(key)) {
                    diffs.put("mlp_input[" + b + "]", diff(g, ops, outs.getAsJsonObject("mlp_input").get(key).getAsString(), h1));
                }
                NDTensor f = dit.branch(b, 1, h1, m, e);
                if (outs.getAsJsonObject("mlp").has(key)) {
                    diffs.put("mlp[" + b + "]", diff(g, ops, outs.getAsJsonObject("mlp").get(key).getAsString(), f));
                }
                h = dit.addBranch(1, h1, m, f);
            }
            diffs.put("final_input", diff(g, ops, outs.get("final_input").getAsString(), h));
            diffs.put("final", diff(g, ops, outs.get("final").getAsString(), dit.finalLayer(h, e)));

            NDTensor staged = dit.forward(x, t, labels);
            NDTensor whole = dit.wholeModel(x, t, labels);
            diffs.put("forward (stages)", diff(g, ops, outs.get("forward").getAsString(), staged));
            diffs.put("forward (whole TorchScript)", diff(g, ops, outs.get("forward").getAsString(), whole));
            diffs.put("stages vs whole TorchScript", maxAbsDiff(ops.toFloats(staged), ops.toFloats(whole)));
        }
        diffs.forEach((k, v) -> System.out.printf("golden component %-30s max abs diff %.3g%n", k, v));
        assertThat(diffs.size()).isGreaterThanOrEqualTo(16);
        assertThat(diffs).allSatisfy((k, v) -> assertThat(v).as(k).isLessThanOrEqualTo(COMPONENT_BOUND));
    }

    private static double diff(Goldens g, TensorOps<NDTensor> ops, String name, NDTensor actual) throws IOException {
        assertThat(actual.shape()).as(name).containsExactly(g.shape(name));
        return maxAbsDiff(ops.toFloats(actual), g.array(name));
    }

    /** The recorded draws in the order the core samplers consume them: x_T, then one per step with i > 0. */
    static ReplayNoise replay(Goldens g, JsonObject traj) throws IOException {
        List<float[]> draws = new ArrayList<>();
        draws.add(g.array(traj.get("noise").getAsString()));
        if (!traj.get("step_noise").isJsonNull()) {
            String name = traj.get("step_noise").getAsString();
            long[] s = g.shape(name);
            float[] all = g.array(name);
            int per = (int) (all.length / s[0]);
            // row k is used at loop index i = K-1-k; the core draws at i = K-1 .. 1 (rows 0 .. K-2)
            for (int k = 0; k < s[0] - 1; k++) {
                float[] row = new float[per];
                System.arraycopy(all, k * per, row, 0, per);
                draws.add(row);
            }
        }
        return new ReplayNoise(draws);
    }

    static GenerationRequest request(JsonObject traj, ReplayNoise noise) {
        return GenerationRequest.builder(ints(traj.get("labels")))
                .sampler(traj.get("sampler").getAsString())
                .steps(traj.get("steps").getAsInt())
                .policy(traj.get("policy").getAsString())
                .cfgScale(traj.get("cfg_scale").getAsDouble())
                .clipDenoised(traj.get("clip").getAsBoolean())
                .noise(noise)
                .build();
    }

    @ParameterizedTest
    @ValueSource(strings = {"ddim50_none", "ddim50_fora3", "ddpm50_fora3"})
    void trajectoryMatchesTheReference(String name) throws Exception {
        Goldens g = Goldens.forModel(TestModels.modelDir());
        DiTPipeline pipeline = TestModels.pipeline();
        JsonObject traj = g.trajectory(name);
        float[] want = g.array(traj.get("final").getAsString());

        // 1. The high-level API.
        ReplayNoise noise = replay(g, traj);
        GeneratedImages images = pipeline.generate(request(traj, noise));
        double finalDiff = maxAbsDiff(images.data(), want);
        assertThat(noise.remaining()).as("unused recorded draws").isZero();
        assertThat(images.stats().fullSteps()).isEqualTo(traj.get("refresh_steps").getAsInt());

        // 2. The same loop through the core directly, recording the intermediate latents.
        GenerationRequest req = request(traj, replay(g, traj));
        Set<Integer> keep = new HashSet<>();
        traj.getAsJsonObject("intermediates").keySet().forEach(k -> keep.add(Integer.parseInt(k)));
        RecordingSampler sampler = new RecordingSampler(req.sampler().create(pipeline.schedule(req.steps()),
                req.clipDenoised()), keep);
        float[] direct;
        try (TorchScriptDiT dit = pipeline.newDiT();
             Generation<NDTensor> generation = Generation.builder(dit, req.policy()).steps(req.steps()).images(req.images())
                     .guided(true).open()) {
            DenoisingModel<NDTensor> guided = new ClassifierFreeGuidance<>(dit.ops(), generation, req.cfgScale(),
                    dit.unconditional());
            direct = dit.ops().toFloats(sampler.sample(dit.ops(), guided, images.shape(), req.conditioning(),
                    req.noiseSource()));
        }
        assertThat(maxAbsDiff(direct, images.data())).as("core loop vs pipeline").isZero();
        Map<String, Double> diffs = new LinkedHashMap<>();
        for (Map.Entry<Integer, float[]> e : sampler.kept().entrySet()) {
            String gname = traj.getAsJsonObject("intermediates").get(e.getKey().toString()).getAsString();
            diffs.put("x after loop index " + e.getKey(), maxAbsDiff(e.getValue(), g.array(gname)));
        }
        diffs.put("final", finalDiff);
        diffs.forEach((k, v) -> System.out.printf("golden %s (%s) %-22s max abs diff %.3g%n", name,
                CachePolicies.toSpec(req.policy()), k, v));
        assertThat(diffs).allSatisfy((k, v) -> assertThat(v).as(name + " " + k).isLessThanOrEqualTo(SAMPLE_BOUND));
    }
}
