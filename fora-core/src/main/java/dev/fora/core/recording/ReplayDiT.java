package dev.fora.core.recording;

import dev.fora.core.model.Conditioning;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.model.DiTModel;
import dev.fora.core.model.Embedding;
import dev.fora.core.model.Modulation;
import dev.fora.core.tensor.ArrayOps;
import dev.fora.core.tensor.ArrayTensor;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@link Recording} played back as a model on {@link ArrayOps}: step {@code s} embeds to the
 * recorded tokens and modulations, and every branch returns its recorded output for the rows
 * asked (whatever tokens it is given), so a {@link dev.fora.core.engine.Generation} over it runs
 * any policy's decisions, reuse and forecasts on the recorded features, without the model.
 * The final layer records the tokens it receives ({@link #finalTokens}) and returns zeros.
 *
 * <p>Open loop: each step starts again from the recorded (uncached) tokens, so an error a
 * policy makes affects the rest of its step but not the next steps.
 */
public final class ReplayDiT implements DiTModel<ArrayTensor> {

    private final ArrayOps ops;
    private final Recording recording;
    private final List<float[]> finalTokens = new ArrayList<>();
    private int step = -1;

    /** Plays back {@code recording} on {@code ops}. */
    public ReplayDiT(ArrayOps ops, Recording recording) {
        this.ops = ops;
        this.recording = recording;
    }

    @Override
    public DiTConfig config() {
        return recording.config();
    }

    @Override
    public ArrayOps ops() {
        return ops;
    }

    /** The tokens the final layer received at each step so far (the last block's output). */
    public List<float[]> finalTokens() {
        return finalTokens;
    }

    @Override
    public Embedding<ArrayTensor> embed(ArrayTensor x, float[] timesteps, Conditioning conditioning) {
        step++;
        if (step >= recording.steps()) {
            throw new IllegalStateException("the recording has " + recording.steps() + " steps; step " + step + " was asked");
        }
        if (Math.abs(timesteps[0] - recording.timestep(step)) > 1e-3) {
            throw new IllegalStateException("step " + step + " of the recording ran at timestep " + recording.timestep(step)
                    + ", the replay asks for " + timesteps[0] + " (another sampler or step count?)");
        }
        int rows = recording.rows();
        if (conditioning.size() != rows) {
            throw new IllegalStateException("the recording has " + rows + " rows, the replay runs " + conditioning.size());
        }
        float[] index = new float[rows];
        for (int r = 0; r < rows; r++) {
            index[r] = r;
        }
        DiTConfig c = config();
        return new Embedding<>(ops.wrap(new int[] {rows, c.tokens(), c.hiddenSize()}, recording.tokens(step).clone()),
                ops.wrap(new int[] {rows, 1}, index));
    }

    @Override
    public List<Modulation<ArrayTensor>> modulations(Embedding<ArrayTensor> embedding) {
        int[] rows = rowsOf(embedding);
        int d = config().hiddenSize();
        List<Modulation<ArrayTensor>> out = new ArrayList<>();
        for (int b = 0; b < config().depth(); b++) {
            List<ArrayTensor> vectors = new ArrayList<>();
            for (int v = 0; v < config().layout().modulation().size(); v++) {
                vectors.add(ops.wrap(new int[] {rows.length, d}, gather(recording.modulation(step, b, v), rows, d)));
            }
            out.add(new Modulation<>(vectors));
        }
        return out;
    }

    @Override
    public ArrayTensor branch(int block, int branch, ArrayTensor x, Modulation<ArrayTensor> modulation,
            Embedding<ArrayTensor> embedding) {
        int[] rows = rowsOf(embedding);
        DiTConfig c = config();
        int per = c.tokens() * c.hiddenSize();
        return ops.wrap(new int[] {rows.length, c.tokens(), c.hiddenSize()},
                gather(recording.feature(step, c.feature(block, branch)), rows, per));
    }

    @Override
    public ArrayTensor modulatedInput(int block, ArrayTensor x, Modulation<ArrayTensor> modulation) {
        DiTConfig c = config();
        if (x.shape()[0] != recording.rows()) {
            throw new IllegalStateException("the replay serves modulated inputs for the whole batch only");
        }
        if (!recording.hasModulatedInputs()) {
            throw new IllegalArgumentException("the recording has no modulated inputs (its model does not expose them), "
                    + "so the modulated input change of block " + block + " (TeaCache's signal) cannot be measured");
        }
        return ops.wrap(new int[] {recording.rows(), c.tokens(), c.hiddenSize()}, recording.modulatedInput(step, block).clone());
    }

    @Override
    public ArrayTensor finalLayer(ArrayTensor x, Embedding<ArrayTensor> embedding) {
        finalTokens.add(ops.toFloats(x));
        DiTConfig c = config();
        int n = (int) x.shape()[0];
        return ops.wrap(new int[] {n, c.outChannels(), c.inputSize(), c.inputSize()},
                new float[n * c.outChannels() * c.inputSize() * c.inputSize()]);
    }

    private int[] rowsOf(Embedding<ArrayTensor> e) {
        float[] index = ops.read(e.conditioning());
        int[] rows = new int[index.length];
        for (int i = 0; i < index.length; i++) {
            rows[i] = (int) index[i];
        }
        return rows;
    }

    private static float[] gather(float[] all, int[] rows, int per) {
        float[] out = new float[rows.length * per];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(all, rows[i] * per, out, i * per, per);
        }
        return out;
    }
}
