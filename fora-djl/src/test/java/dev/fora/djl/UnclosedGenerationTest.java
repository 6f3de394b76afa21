package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.sampling.SamplingStep;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A generation dropped without close() used to hold its native memory until the pipeline closed. */
class UnclosedGenerationTest {

    private static final int GENERATIONS = 8;

    @Test
    void generationsDroppedWithoutCloseAreReleasedOnceUnreachable() throws Exception {
        try (DiTPipeline p = DiTPipeline.load(TestModels.modelDir())) {
            int before = p.manager().getManagedArrays().size();
            List<DjlGeneration> generations = openAndStep(p);
            List<NDManager> roots = generations.stream().map(DjlGeneration::manager).toList();
            int cachePerGeneration = 2 * p.config().depth(); // fora:2 caches every block's two branches
            assertThat(p.manager().getManagedArrays().size()).isGreaterThanOrEqualTo(before
                    + GENERATIONS * cachePerGeneration);
            // dropped only now: a collection before the count above would have released some already
            generations.clear();

            long deadline = System.nanoTime() + 30_000_000_000L;
            while (roots.stream().anyMatch(NDManager::isOpen) && System.nanoTime() < deadline) {
                System.gc();
                Thread.sleep(20);
            }
            assertThat(roots).as("the generations' root managers").noneMatch(NDManager::isOpen);
            assertThat(p.manager().getManagedArrays()).hasSize(before);
        }
    }

    /** Opens generations and runs a step in each, without closing them. */
    private static List<DjlGeneration> openAndStep(DiTPipeline p) {
        var c = p.config();
        SamplingStep first = SamplingStep.of(p.schedule(10), 0);
        List<DjlGeneration> generations = new ArrayList<>();
        try (NDManager mine = NDManager.newBaseManager()) {
            NDArray x = mine.zeros(new Shape(1, c.inChannels(), c.inputSize(), c.inputSize()));
            for (int i = 0; i < GENERATIONS; i++) {
                DjlGeneration g = p.openGeneration(CachePolicies.parse("fora:2"), 10, 1, true);
                g.predictGuided(first, x, ClassLabels.of(i % c.numClasses()), 1.5).close();
                generations.add(g);
            }
        }
        return generations;
    }
}
