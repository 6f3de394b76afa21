package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.model.ClassLabels;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.GenerationCancelledException;
import dev.fora.core.sampling.SamplingStep;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Run by {@link CloseWhileGeneratingTest} in a JVM of its own, because the bug it guards against
 * kills the JVM (SIGSEGV in libtorch): closes a pipeline 50 ms after 4 threads started generating
 * in a loop, and closes a {@link DjlGeneration} from another thread while it steps. Exit 0 and
 * one line per round when every call either completed or failed with an
 * {@link IllegalStateException}; exit 3 on any other outcome.
 *
 * <p>Arguments: model directory, rounds.
 */
public final class CloseWhileGeneratingMain {

    private static final int THREADS = 4;

    private CloseWhileGeneratingMain() {
    }

    public static void main(String[] args) throws Exception {
        Path model = Path.of(args[0]);
        int rounds = Integer.parseInt(args[1]);
        AtomicReference<Throwable> unexpected = new AtomicReference<>();
        for (int round = 0; round < rounds; round++) {
            DiTPipeline pipeline = DiTPipeline.load(model, DiTPipeline.Options.defaults().withVerifyDigests(false));
            AtomicInteger completed = new AtomicInteger();
            AtomicInteger cancelled = new AtomicInteger();
            AtomicInteger refused = new AtomicInteger();
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                int label = t;
                threads.add(new Thread(() -> {
                    try {
                        while (true) {
                            pipeline.generate(GenerationRequest.builder(label, label + 1).steps(10).policy("fora:2")
                                    .seed(label).build());
                            completed.incrementAndGet();
                        }
                    } catch (GenerationCancelledException e) {
                        cancelled.incrementAndGet(); // stopped mid-generation by close
                    } catch (IllegalStateException e) {
                        refused.incrementAndGet(); // called after close
                    } catch (Throwable e) {
                        unexpected.compareAndSet(null, e);
                    }
                }, "generate-" + t));
            }
            threads.forEach(Thread::start);
            Thread.sleep(50);
            pipeline.close();
            for (Thread t : threads) {
                t.join();
            }
            int generationsClosed = closeGenerationWhileStepping(model, unexpected);
            System.out.printf("round %d: %d generations completed, %d cancelled mid-generation, %d refused after close,"
                    + " %d stepping generation closed%n", round, completed.get(), cancelled.get(), refused.get(),
                    generationsClosed);
            if (unexpected.get() != null) {
                break;
            }
        }
        if (unexpected.get() != null) {
            System.out.println("unexpected: " + unexpected.get());
            unexpected.get().printStackTrace(System.out);
            System.exit(3);
        }
        System.exit(0);
    }

    /** One thread steps a generation in a loop; this thread closes the generation 20 ms in. */
    private static int closeGenerationWhileStepping(Path model, AtomicReference<Throwable> unexpected) throws Exception {
        try (DiTPipeline pipeline = DiTPipeline.load(model, DiTPipeline.Options.defaults().withVerifyDigests(false))) {
            var c = pipeline.config();
            int steps = 1000;
            DiffusionSchedule schedule = pipeline.schedule(steps);
            DjlGeneration generation = pipeline.openGeneration(CachePolicies.parse("none"), steps, 2, true);
            AtomicInteger stepped = new AtomicInteger();
            Thread stepper = new Thread(() -> {
                try (NDManager mine = NDManager.newBaseManager()) {
                    NDArray x = mine.zeros(new Shape(2, c.inChannels(), c.inputSize(), c.inputSize()));
                    for (int s = 0; s < steps; s++) {
                        generation.predictGuided(SamplingStep.of(schedule, s), x, ClassLabels.of(1, 2), 1.5).close();
                        stepped.incrementAndGet();
                    }
                } catch (IllegalStateException e) {
                    // closed while stepping: expected
                } catch (Throwable e) {
                    unexpected.compareAndSet(null, e);
                }
            }, "stepper");
            stepper.start();
            Thread.sleep(20);
            generation.close();
            stepper.join();
            return stepped.get() > 0 && stepped.get() < steps ? 1 : 0;
        }
    }
}
