package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fora.core.sampling.CancelToken;
import dev.fora.core.sampling.GenerationCancelledException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * A generation stops between steps when its thread is interrupted, its cancel token is
 * cancelled or its pipeline is closed: a typed error naming the step, nothing left allocated.
 */
class CancellationTest extends LeakCheckedPipelineTest {

    private static final int STEPS = 500;

    /** What a generation on another thread ended with. */
    private record Outcome(Throwable thrown, boolean interruptedAfter) {
    }

    /** Generates {@code STEPS} steps on a new thread; runs {@code stop} once 3 steps are done. */
    private static Outcome generateAndStop(DiTPipeline pipeline, GenerationRequest.Builder request,
            java.util.function.Consumer<Thread> stop) throws InterruptedException {
        CountDownLatch running = new CountDownLatch(1);
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        AtomicBoolean interrupted = new AtomicBoolean();
        Thread t = new Thread(() -> {
            try {
                pipeline.generate(request.steps(STEPS).onStep((step, total) -> {
                    if (step == 2) {
                        running.countDown();
                    }
                }).build());
            } catch (Throwable e) {
                thrown.set(e);
                interrupted.set(Thread.currentThread().isInterrupted());
            }
        });
        t.start();
        assertThat(running.await(1, TimeUnit.MINUTES)).isTrue();
        stop.accept(t);
        t.join(TimeUnit.MINUTES.toMillis(1));
        assertThat(t.isAlive()).isFalse();
        return new Outcome(thrown.get(), interrupted.get());
    }

    private static void assertCancelled(Throwable thrown, String reason) {
        assertThat(thrown).isInstanceOfSatisfying(GenerationCancelledException.class, e -> {
            assertThat(e.step()).isBetween(3, STEPS - 1);
            assertThat(e.totalSteps()).isEqualTo(STEPS);
            assertThat(e.reason()).isEqualTo(reason);
        }).hasMessageStartingWith("generation cancelled before step ");
    }

    @Test
    void interruptingTheGeneratingThreadStopsItAtTheNextStep() throws Exception {
        Outcome o = generateAndStop(p, GenerationRequest.builder(1, 2).policy("fora:3"), Thread::interrupt);
        assertCancelled(o.thrown(), "the thread was interrupted");
        // the interrupt status is left set, for the thread's own blocking calls to see
        assertThat(o.interruptedAfter()).isTrue();
    }

    @Test
    void cancellingTheTokenStopsTheGenerationAtTheNextStep() throws Exception {
        CancelToken token = new CancelToken();
        Outcome o = generateAndStop(p, GenerationRequest.builder(3).policy("none").cancel(token), t -> token.cancel("user"));
        assertCancelled(o.thrown(), "user");
        assertThat(o.interruptedAfter()).isFalse();
        // a cancelled token stops later requests before their first step
        assertThatThrownBy(() -> p.generate(GenerationRequest.builder(3).steps(5).cancel(token).build()))
                .isInstanceOf(GenerationCancelledException.class).hasMessage("generation cancelled before step 0 of 5: user");
    }

    @Test
    void closingThePipelineStopsItsGenerationsAndRefusesNewOnes() throws Exception {
        DiTPipeline own = DiTPipeline.load(TestModels.modelDir());
        Outcome o = generateAndStop(own, GenerationRequest.builder(4), t -> own.close());
        assertCancelled(o.thrown(), "the pipeline was closed");
        assertThat(own.manager().isOpen()).isFalse();
        assertThatThrownBy(() -> own.generate(GenerationRequest.builder(1).steps(2).build()))
                .isInstanceOf(IllegalStateException.class).hasMessageEndingWith("is closed");
    }

    @Test
    void closingThePipelineFromInsideItsOwnCallIsRefused() throws Exception {
        try (DiTPipeline own = DiTPipeline.load(TestModels.modelDir())) {
            assertThatThrownBy(() -> own.generate(GenerationRequest.builder(1).steps(3).onStep((s, k) -> own.close())
                    .build())).isInstanceOf(IllegalStateException.class).hasMessageContaining("from inside one of its own calls");
            // still open and usable
            assertThat(own.generate(GenerationRequest.builder(1).steps(2).build()).data()).isNotEmpty();
        }
    }
}
