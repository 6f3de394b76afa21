package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.cache.CacheDecider;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.Decision;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.cache.Measurement;
import dev.fora.core.cache.StepContext;
import dev.fora.core.model.TextEmbeddings;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every kind of policy on the PixArt layout through DJL: the built-ins decide per (block, branch)
 * over attn, cross and mlp; an adaptive rule reads TeaCache's signal (block 0's modulated input,
 * {@link TorchScriptPixArt#modulatedInput}) or First-Block-Cache's (block 0's residual); the images
 * stay near the uncached ones, and an image comes out the same alone and in a batch.
 */
class PixArtPoliciesTest {

    private static DiTPipeline pixart;
    private static TextEmbeddings prompts;

    @BeforeAll
    static void load() throws Exception {
        pixart = DiTPipeline.load(FamilyGoldenParityTest.FAMILIES.resolve("pixart-small"));
        prompts = TextEmbeddingFiles.read(FamilyGoldenParityTest.FAMILIES.resolve("pixart-small-prompts.npz"));
    }

    @AfterAll
    static void close() {
        pixart.close();
    }

    /** Compute block 0; the rest reuse until the measured change of block 0, summed since the last compute, passes 0.05. */
    static CachePolicy accumulated(Measurement signal) {
        return new CachePolicy() {
            @Override
            public Set<Measurement> measurements(GenerationInfo info) {
                return Set.of(signal);
            }

            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                return new CacheDecider() {
                    double sum;
                    boolean compute;

                    @Override
                    public Decision decide(StepContext ctx) {
                        if (ctx.block() == 0) {
                            return Decision.COMPUTE;
                        }
                        if (ctx.block() == 1 && ctx.branchIndex() == 0) {
                            sum += ctx.measurement(signal).orElse(Double.POSITIVE_INFINITY);
                            compute = sum > 0.05;
                            if (compute) {
                                sum = 0;
                            }
                        }
                        return compute ? Decision.COMPUTE : Decision.REUSE;
                    }
                };
            }
        };
    }

    private static GeneratedImages run(CachePolicy policy, TextEmbeddings text, long seed) {
        return pixart.generate(GenerationRequest.builder(text).sampler("dpms").steps(12).cfgScale(4.5).policy(policy)
                .seed(seed).decode(false).build());
    }

    private static double relativeL1(float[] a, float[] b) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < a.length; i++) {
            num += Math.abs(a[i] - b[i]);
            den += Math.abs(b[i]);
        }
        return num / den;
    }

    @ParameterizedTest
    @ValueSource(strings = {"fora:2", "taylorseer:2", "warmup:2,cooldown:2,fora:3", "mask:111010101011", "teacache",
        "first-block"})
    void runsPerBranchAndStaysNearTheUncachedImages(String name) {
        CachePolicy policy = switch (name) {
            case "teacache" -> accumulated(Measurement.modulatedInputChange(0));
            case "first-block" -> accumulated(Measurement.residualChange(0));
            default -> CachePolicies.parse(name);
        };
        float[] uncached = run(CachePolicies.parse("none"), prompts, 5).latents();
        GeneratedImages cached = run(policy, prompts, 5);
        double err = relativeL1(cached.latents(), uncached);
        TorchScriptCalls calls = cached.calls();
        System.out.printf("pixart-small %-28s compute %.3f, calls attn %d cross %d mlp %d, relative L1 vs uncached %.4f%n",
                name, cached.stats().computeFraction(), calls.totalBranchCalls() > 0 ? sum(calls.calls("attn")) : 0,
                sum(calls.calls("cross")), sum(calls.calls("mlp")), err);
        assertThat(cached.stats().computeFraction()).isLessThan(1.0);
        assertThat(sum(calls.calls("cross"))).isEqualTo(sum(calls.calls("attn")));
        assertThat(err).isLessThan(0.25);
        // image 1 alone (seed 5 + 1) equals image 1 of the batch
        float[] alone = run(policy, (TextEmbeddings) prompts.rows(new int[] {1}), 6).latents();
        float[] inBatch = cached.latents();
        int per = alone.length;
        float[] second = new float[per];
        System.arraycopy(inBatch, per, second, 0, per);
        assertThat(Goldens.maxAbsDiff(alone, second)).isLessThan(1e-3);
    }

    private static long sum(long[] a) {
        long s = 0;
        for (long v : a) {
            s += v;
        }
        return s;
    }
}
