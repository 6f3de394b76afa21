package dev.fora.djl;

import static dev.fora.djl.Goldens.maxAbsDiff;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fora.core.model.Conditioning;
import dev.fora.core.model.TextEmbeddings;
import dev.fora.core.recording.Recorder;
import dev.fora.core.recording.Recording;
import dev.fora.core.sampling.ClassifierFreeGuidance;
import dev.fora.core.sampling.DenoisingModel;
import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.SamplerKind;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * {@link DiTPipeline#record} records the trajectory {@link DiTPipeline#generate} runs: on the
 * latent DiT with its decoder (3 of 4 channels guided, never clipped) and on the PixArt-α (the
 * null caption under each prompt's mask; its own guided channels per sampler), under every
 * sampler. The recording's per-step model inputs (timestep and the tokens entering block 0) and
 * its final latent equal generate's within 1e-5.
 *
 * <p>Generate's per-step inputs come from a reference loop written out here from the manifest's
 * rules (sampler on the training schedule, no clipping for a latent model, guided channels per
 * sampler, the family's unconditional rows), recorded with the core's {@link Recorder}; the
 * reference's final latent equals generate's, so its inputs are generate's.
 */
class RecordParityTest {

    private static final double BOUND = 1e-5;
    private static final int STEPS = 6;

    private static DiTPipeline dit;
    private static DiTPipeline pixart;
    private static TextEmbeddings prompts;

    @BeforeAll
    static void load() throws Exception {
        dit = DiTPipeline.load(FamilyGoldenParityTest.FAMILIES.resolve("dit-latent-small"));
        pixart = DiTPipeline.load(FamilyGoldenParityTest.FAMILIES.resolve("pixart-small"));
        prompts = TextEmbeddingFiles.read(FamilyGoldenParityTest.FAMILIES.resolve("pixart-small-prompts.npz"));
    }

    @AfterAll
    static void close() {
        dit.close();
        pixart.close();
    }

    @ParameterizedTest
    @EnumSource(SamplerKind.class)
    void theLatentDiTRecordsWhatGenerateRuns(SamplerKind sampler) {
        parity(dit, GenerationRequest.builder(1, 4, 7).sampler(sampler).steps(STEPS).cfgScale(4.0).seed(11).build());
    }

    @ParameterizedTest
    @EnumSource(SamplerKind.class)
    void thePixArtRecordsWhatGenerateRuns(SamplerKind sampler) {
        parity(pixart, GenerationRequest.builder(prompts.rows(new int[] {0, 2})).sampler(sampler).steps(STEPS)
                .cfgScale(4.5).seed(5).build());
    }

    @ParameterizedTest
    @EnumSource(value = SamplerKind.class, names = {"DDIM", "DPMS"})
    void unguidedAndOtherGuidedChannelsToo(SamplerKind sampler) {
        parity(dit, GenerationRequest.builder(2, 3).sampler(sampler).steps(STEPS).cfgScale(1.0).seed(3).build());
        parity(pixart, GenerationRequest.builder(prompts.rows(new int[] {1})).sampler(sampler).steps(STEPS).cfgScale(3.0)
                .guidedChannels(1).seed(8).build());
    }

    @org.junit.jupiter.api.Test
    void aCachedOrWholeModelRequestCannotBeRecorded() {
        assertThatThrownBy(() -> dit.record(GenerationRequest.builder(1).policy("fora:2").steps(2).build(), Map.of()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("uncached run");
        assertThatThrownBy(() -> dit.record(GenerationRequest.builder(1).forward(GenerationRequest.Forward.WHOLE_MODEL)
                .steps(2).build(), Map.of())).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("uncached run");
    }

    private static void parity(DiTPipeline pipeline, GenerationRequest request) {
        GeneratedImages generated = pipeline.generate(request);
        DiTPipeline.Recorded recorded = pipeline.record(request, Map.of("sampler", request.sampler().id()));
        Reference reference = reference(pipeline, request);
        String what = pipeline.manifest().name() + " " + request.sampler() + " cfg " + request.cfgScale();

        assertThat(maxAbsDiff(reference.latents, generated.latents())).as("reference vs generate, " + what)
                .isLessThanOrEqualTo(BOUND);
        assertThat(maxAbsDiff(recorded.images().latents(), generated.latents())).as("record vs generate, " + what)
                .isLessThanOrEqualTo(BOUND);
        assertThat(recorded.images().decoded()).isEqualTo(generated.decoded()).isTrue();
        assertThat(maxAbsDiff(recorded.images().data(), generated.data())).as("decoded images, " + what)
                .isLessThanOrEqualTo(BOUND);

        Recording r = recorded.recording();
        Recording want = reference.recording;
        assertThat(r.steps()).isEqualTo(STEPS);
        assertThat(r.rows()).isEqualTo(want.rows());
        for (int s = 0; s < STEPS; s++) {
            assertThat(r.timestep(s)).as("timestep of step " + s + ", " + what).isEqualTo(want.timestep(s));
            assertThat(maxAbsDiff(r.tokens(s), want.tokens(s))).as("tokens entering block 0 at step " + s + ", " + what)
                    .isLessThanOrEqualTo(BOUND);
        }
    }

    /** The trajectory generate runs, written out from the manifest, recorded. */
    private record Reference(Recording recording, float[] latents) {
    }

    private static Reference reference(DiTPipeline pipeline, GenerationRequest request) {
        ModelManifest m = pipeline.manifest();
        DiffusionSampler sampler = request.sampler() == SamplerKind.DPMS
                ? request.sampler().create(pipeline.trainingSchedule(), request.steps(), false)
                : request.sampler().create(pipeline.schedule(request.steps()), m.clipDenoised());
        int n = request.images();
        boolean guided = request.cfgScale() != 1.0;
        int channels = request.guidedChannels() != 0 ? request.guidedChannels() : m.guidance().channelsFor(request.sampler());
        try (TorchScriptModel model = pipeline.newModel()) {
            Recorder<NDTensor> recorder = new Recorder<>(model, n, guided);
            DenoisingModel<NDTensor> plain = (step, x, c) -> {
                float[] t = new float[c.size()];
                Arrays.fill(t, (float) step.timestep());
                return recorder.forward(x, t, c);
            };
            DenoisingModel<NDTensor> denoiser = guided ? new ClassifierFreeGuidance<>(model.ops(), plain,
                    request.cfgScale(), model::unconditionalFor, channels == model.config().inChannels() ? 0 : channels)
                    : plain;
            Conditioning c = request.conditioning();
            long[] shape = {n, m.config().inChannels(), m.config().inputSize(), m.config().inputSize()};
            float[] latents = model.ops().toFloats(sampler.sample(model.ops(), denoiser, shape, c, request.noiseSource()));
            return new Reference(recorder.recording(null, Map.of()), latents);
        }
    }
}
