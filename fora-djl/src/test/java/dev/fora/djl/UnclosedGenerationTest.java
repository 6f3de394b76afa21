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
            List<NDManager> roots = openStepAndDrop(p);
            int cachePerGeneration = 2 * p.config().depth(); // fora:2 caches every block's two branches
            assertThat(p.manager().getManagedArrays().size()).isGreaterThanOrEqualTo(before
                    + GENERATIONS * cachePerGeneration);

            long deadline = System.nanoTime() + 30_000_000_000L;
            while (roots.stream().anyMatch(NDManager::isOpen) && System.nanoTime() < deadline) {
                System.gc();
                Thread.sleep(20);
            }
            assertThat(roots).as("the generations' root managers").noneMatch(NDManager::isOpen);
            assertThat(p.manager().getManagedArrays()).hasSize(before);
        }
    }

    /** Opens generations, runs a step in each, keeps only their root managers (not the generations). */
    private static List<NDManager> openStepAndDrop(DiTPipeline p) {
        var c = p.config();
        SamplingStep first = SamplingStep.of(p.schedule(10), 0);
        List<NDManager> roots = new ArrayList<>();
        try (NDManager mine = NDManager.newBaseManager()) {
            NDArray x = mine.zeros(new Shape(1, c.inChannels(), c.inputSize(), c.inputSize()));
            for (int i = 0; i < GENERATIONS; i++) {
                DjlGeneration g = p.openGeneration(CachePolicies.parse("fora:2"), 10, 1, true);
                g.predictGuided(first, x, ClassLabels.of(i % c.numClasses()), 1.5).close();
                roots.add(g.manager());
            }
        }
        return roots;
    }
}
