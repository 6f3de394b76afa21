package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** One loaded model serves generations on several threads at once, with the sequential results. */
class ConcurrencyTest {

    private static final int THREADS = 4;
    private static final int PER_THREAD = 2;

    private static GenerationRequest request(int thread, int k) {
        int n = thread * PER_THREAD + k;
        return GenerationRequest.builder(n % 10, (n + 3) % 10)
                .sampler(n % 2 == 0 ? "ddim" : "ddpm")
                .policy(n % 3 == 0 ? "none" : "fora:3")
                .steps(20)
                .seed(100 + n)
                .build();
    }

    @Test
    void fourThreadsTwoGenerationsEachEqualTheSequentialRun() throws Exception {
        DiTPipeline p = TestModels.pipeline();
        int before = p.manager().getManagedArrays().size();
        float[][] sequential = new float[THREADS * PER_THREAD][];
        long t0 = System.nanoTime();
        for (int th = 0; th < THREADS; th++) {
            for (int k = 0; k < PER_THREAD; k++) {
                sequential[th * PER_THREAD + k] = p.generate(request(th, k)).data();
            }
        }
        long seqNanos = System.nanoTime() - t0;

        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        CountDownLatch start = new CountDownLatch(1);
        List<Future<float[][]>> futures = new ArrayList<>();
        try {
            for (int th = 0; th < THREADS; th++) {
                int thread = th;
                futures.add(pool.submit(() -> {
                    start.await();
                    float[][] out = new float[PER_THREAD][];
                    for (int k = 0; k < PER_THREAD; k++) {
                        out[k] = p.generate(request(thread, k)).data();
                    }
                    return out;
                }));
            }
            t0 = System.nanoTime();
            start.countDown();
            for (int th = 0; th < THREADS; th++) {
                float[][] got = futures.get(th).get(5, TimeUnit.MINUTES);
                for (int k = 0; k < PER_THREAD; k++) {
                    assertThat(got[k]).as("thread %d generation %d", th, k).containsExactly(sequential[th * PER_THREAD + k]);
                }
            }
        } finally {
            pool.shutdownNow();
        }
        System.out.printf("8 generations: sequential %.0f ms, on %d threads %.0f ms%n", seqNanos / 1e6, THREADS,
                (System.nanoTime() - t0) / 1e6);
        assertThat(p.manager().getManagedArrays()).hasSize(before);
    }
}
