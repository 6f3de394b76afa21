package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.SamplingStep;
import org.junit.jupiter.api.Test;

/**
 * The low-level examples, as written in the docs: the full DDIM loop of docs/library.md ("Your own
 * sampler loop") and the README's short form around a user's own update. {@code DocsExamplesTest}
 * (fora-examples) checks that the docs' snippets still appear here verbatim.
 */
class SamplerLoopExampleTest {

    /** The schedule the README's loop samples on; {@link #yourSamplerUpdate} reads it. */
    private DiffusionSchedule schedule;

    @Test
    void theLibraryPagesDdimLoopRunsThroughTheCache() throws Exception {
        DiTPipeline pipeline = TestModels.pipeline();
        NDArray result;
        DjlGeneration finished;
        // docs/library.md, "Your own sampler loop (low-level API)":
        DiffusionSchedule s = pipeline.schedule(50);        // the manifest's linear schedule respaced to 50 steps
        ClassLabels labels = ClassLabels.of(1, 6);
        try (NDManager manager = NDManager.newBaseManager();
             DjlGeneration generation = pipeline.openGeneration(CachePolicies.parse("fora:3"), 50, 2, true)) {
            NDArray x = manager.randomNormal(new Shape(2, 3, 16, 16));
            for (int k = 0; k < 50; k++) {
                SamplingStep step = SamplingStep.of(s, k);    // step k, FORA's loop index 49 - k, and its timestep
                int i = step.loopIndex();                     // the respaced schedule's row
                try (NDManager stepManager = manager.newSubManager()) {
                    // [x; x] with [labels; null] in one batch, eps = eps_u + 1.5 (eps_c - eps_u)
                    NDArray out = generation.predictGuided(step, x, labels, 1.5);
                    out.attach(stepManager);
                    NDArray eps = out.get(":, 0:3");          // channels 3..5: the learned variance value
                    float a = (float) s.sqrtRecipAlphaCumprod(i), b = (float) s.sqrtRecipm1AlphaCumprod(i);
                    NDArray x0 = x.mul(a).sub(eps.mul(b)).clip(-1f, 1f);
                    NDArray epsX0 = x.mul(a).sub(x0).div(b);
                    double prev = s.alphaCumprodPrev(i);
                    NDArray next = x0.mul((float) Math.sqrt(prev)).add(epsX0.mul((float) Math.sqrt(1 - prev)));
                    for (NDArray t : new NDArray[] {eps, x0, epsX0, next}) t.attach(stepManager);
                    next.attach(manager);                     // the only array that outlives the step
                    x.close();
                    x = next;
                }
            }
            System.out.println(generation.stats());
            // (end of the example)
            assertThat(generation.stats().fullSteps()).isEqualTo(18);
            assertThat(x.getShape()).isEqualTo(new Shape(2, 3, 16, 16));
            // the last DDIM step lands on the clipped x0
            assertThat(x.abs().max().getFloat()).isLessThanOrEqualTo(1f);
            finished = generation;
        }
        assertThat(finished.isClosed()).isTrue();
    }

    @Test
    void theReadmesShortLoopWrapsAnyUpdate() throws Exception {
        DiTPipeline pipeline = TestModels.pipeline();
        schedule = pipeline.schedule(50);
        ClassLabels labels = ClassLabels.of(1, 6);
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = manager.randomNormal(new Shape(2, 3, 16, 16));
            // README.md, "Your own sampler loop":
            try (DjlGeneration generation = pipeline.openGeneration(CachePolicies.parse("fora:3"), 50, 2, true)) {
                for (int k = 0; k < 50; k++) {
                    SamplingStep step = SamplingStep.of(schedule, k);             // step k, its loop index and timestep
                    NDArray out = generation.predictGuided(step, x, labels, 1.5); // the cached, guided model call
                    x = yourSamplerUpdate(x, out, step);                          // your sampler, unchanged
                }
                System.out.println(generation.stats());                           // computed, reused, forecast
                // (end of the example)
                assertThat(generation.stats().fullSteps()).isEqualTo(18);
                assertThat(generation.stats().computeFraction()).isEqualTo(0.36);
            }
            assertThat(manager.getManagedArrays()).as("only the latent outlives the steps").containsExactly(x);
            assertThat(x.abs().max().getFloat()).isLessThanOrEqualTo(1f);
        }
    }

    /** DDIM (eta 0) with x0 clipped: the user's own update; it frees its inputs. */
    private NDArray yourSamplerUpdate(NDArray x, NDArray out, SamplingStep step) {
        DiffusionSchedule s = schedule;
        int i = step.loopIndex();
        try (NDManager scratch = x.getManager().newSubManager()) {
            out.attach(scratch);
            x.attach(scratch);
            NDArray eps = out.get(":, 0:3");
            float a = (float) s.sqrtRecipAlphaCumprod(i), b = (float) s.sqrtRecipm1AlphaCumprod(i);
            NDArray x0 = x.mul(a).sub(eps.mul(b)).clip(-1f, 1f);
            NDArray epsX0 = x.mul(a).sub(x0).div(b);
            double prev = s.alphaCumprodPrev(i);
            NDArray next = x0.mul((float) Math.sqrt(prev)).add(epsX0.mul((float) Math.sqrt(1 - prev)));
            next.attach(scratch.getParentManager());
            return next;
        }
    }
}
