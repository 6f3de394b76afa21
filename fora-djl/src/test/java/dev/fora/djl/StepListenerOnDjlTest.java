package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** {@code GenerationRequest.Builder.onStep}: each step once, in order, on the generating thread; images unchanged. */
class StepListenerOnDjlTest {

    private static final int K = 10;

    private static GenerationRequest.Builder request(String sampler) {
        return GenerationRequest.builder(2, 7).sampler(sampler).steps(K).cfgScale(1.5).policy("fora:3").seed(11);
    }

    @Test
    void listenerSeesStepsZeroToKMinusOneOnceInOrderAndImagesAreBitIdentical() throws Exception {
        DiTPipeline p = TestModels.pipeline();
        for (String sampler : new String[] {"ddim", "ddpm", "dpm-solver++"}) {
            GeneratedImages plain = p.generate(request(sampler).build());
            List<Integer> steps = new ArrayList<>();
            List<Integer> totals = new ArrayList<>();
            Thread caller = Thread.currentThread();
            List<Thread> threads = new ArrayList<>();
            GeneratedImages listened = p.generate(request(sampler).onStep((step, totalSteps) -> {
                steps.add(step);
                totals.add(totalSteps);
                threads.add(Thread.currentThread());
            }).build());

            assertThat(steps).as(sampler).containsExactlyElementsOf(IntStream.range(0, K).boxed().toList());
            assertThat(totals).as(sampler).hasSize(K).containsOnly(K);
            assertThat(threads).as(sampler).containsOnly(caller);
            for (int i = 0; i < 2; i++) {
                assertThat(listened.image(i)).as("%s image %d", sampler, i).containsExactly(plain.image(i));
            }
            assertThat(listened.stats().fullSteps()).isEqualTo(plain.stats().fullSteps());
        }
    }

    @Test
    void aThrowingListenerAbortsTheGenerationAndLeavesNothingBehind() throws Exception {
        DiTPipeline p = TestModels.pipeline();
        int before = p.manager().getManagedArrays().size();
        List<Integer> steps = new ArrayList<>();
        assertThatThrownBy(() -> p.generate(request("ddim").onStep((step, totalSteps) -> {
            steps.add(step);
            if (step == 3) {
                throw new IllegalStateException("cancelled");
            }
        }).build())).isInstanceOf(IllegalStateException.class).hasMessage("cancelled");
        assertThat(steps).containsExactly(0, 1, 2, 3);
        assertThat(p.manager().getManagedArrays()).as("arrays left under the model").hasSize(before);
        assertThatThrownBy(() -> request("ddim").onStep(null)).isInstanceOf(NullPointerException.class);
    }
}
