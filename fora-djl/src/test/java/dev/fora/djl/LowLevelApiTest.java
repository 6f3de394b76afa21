package dev.fora.djl;

import static dev.fora.djl.Goldens.maxAbsDiff;
import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.google.gson.JsonObject;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.PerImageNoise;
import dev.fora.core.sampling.SamplingStep;
import org.junit.jupiter.api.Test;

/** A hand-written DDIM loop on NDArrays that calls the cached model once per step. */
class LowLevelApiTest {

    /** DDIM (eta 0) with x0 clipping, written the way a user with their own loop would. */
    static float[] handWrittenDdim(DiTPipeline pipeline, int[] labels, float[] noise, int steps, String policy,
            double cfgScale) {
        var c = pipeline.config();
        DiffusionSchedule s = pipeline.schedule(steps);
        Shape shape = new Shape(labels.length, c.inChannels(), c.inputSize(), c.inputSize());
        try (NDManager manager = NDManager.newBaseManager();
             DjlGeneration generation = pipeline.openGeneration(CachePolicies.parse(policy), steps, labels.length, true)) {
            NDArray x = manager.create(noise, shape);
            for (int step = 0; step < steps; step++) {
                SamplingStep at = SamplingStep.of(s, step);
                int i = at.loopIndex();
                try (NDManager stepManager = manager.newSubManager()) {
                    NDArray out = generation.predictGuided(at, x, ClassLabels.of(labels), cfgScale);
                    out.attach(stepManager);
                    NDArray eps = out.get(":, 0:" + c.inChannels());
                    float a = (float) s.sqrtRecipAlphaCumprod(i);
                    float b = (float) s.sqrtRecipm1AlphaCumprod(i);
                    NDArray x0 = x.mul(a).sub(eps.mul(b)).clip(-1f, 1f);
                    NDArray epsFromX0 = x.mul(a).sub(x0).div(b);
                    double prev = s.alphaCumprodPrev(i);
                    NDArray next = x0.mul((float) Math.sqrt(prev)).add(epsFromX0.mul((float) Math.sqrt(1 - prev)));
                    for (NDArray t : new NDArray[] {eps, x0, epsFromX0, next}) {
                        t.attach(stepManager); // DJL puts results in the first input's manager
                    }
                    next.attach(manager);
                    x.close();
                    x = next;
                }
            }
            System.out.println("hand-written DDIM-" + steps + " " + policy + ": " + generation.stats());
            return x.toFloatArray();
        }
    }

    @Test
    void handWrittenDdimLoopMatchesThePipeline() throws Exception {
        DiTPipeline p = TestModels.pipeline();
        var c = p.config();
        int[] labels = {1, 6};
        long[] shape = {labels.length, c.inChannels(), c.inputSize(), c.inputSize()};
        float[] noise = PerImageNoise.seeded(11, labels.length).next(shape); // the library's seed rule
        float[] mine = handWrittenDdim(p, labels, noise, 50, "fora:3", 1.5);
        GeneratedImages lib = p.generate(GenerationRequest.builder(labels).sampler("ddim").steps(50).policy("fora:3")
                .cfgScale(1.5).seed(11).build());
        double d = maxAbsDiff(mine, lib.data());
        System.out.printf("hand-written loop vs pipeline: max abs diff %.3g%n", d);
        assertThat(d).isLessThanOrEqualTo(1e-4);
    }

    @Test
    void handWrittenDdimLoopMatchesTheReference() throws Exception {
        Goldens g = Goldens.forModel(TestModels.modelDir());
        JsonObject traj = g.trajectory("ddim50_fora3");
        float[] mine = handWrittenDdim(TestModels.pipeline(), Goldens.ints(traj.get("labels")),
                g.array(traj.get("noise").getAsString()), traj.get("steps").getAsInt(), traj.get("policy").getAsString(),
                traj.get("cfg_scale").getAsDouble());
        double d = maxAbsDiff(mine, g.array(traj.get("final").getAsString()));
        System.out.printf("hand-written loop vs Python reference: max abs diff %.3g%n", d);
        assertThat(d).isLessThanOrEqualTo(GoldenParityTest.SAMPLE_BOUND);
    }
}
