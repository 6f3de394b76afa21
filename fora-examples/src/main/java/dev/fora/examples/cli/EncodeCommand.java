package dev.fora.examples.cli;

import dev.fora.core.model.TextEmbeddings;
import dev.fora.djl.ModelLoadException;
import dev.fora.djl.PromptTokenizer;
import dev.fora.djl.TextEmbeddingFiles;
import dev.fora.djl.TextEncoder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code fora encode}: prompts to the text embeddings a text-conditioned model (PixArt-α) samples
 * from, with the model directory's text encoder, written as the {@code .npz} that
 * {@code --text-embeddings} reads.
 */
@Command(name = "encode", sortOptions = false, mixinStandardHelpOptions = true,
        description = {"Encode prompts with the model directory's text encoder (T5) and write their embeddings as a .npz "
                + "that --text-embeddings reads.",
                "Prompts longer than the encoder's token count are cut (with a warning), as PixArt-α's pipeline does."},
        footer = {"", "Example: fora encode --model pixart --prompt \"a red square\" --prompt \"two cats\" --out p.npz --json p.json"})
public final class EncodeCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--prompt", paramLabel = "TEXT", description = "A prompt; repeat for more.")
    List<String> prompt;

    @Option(names = "--prompts", paramLabel = "FILE", description = "Prompts, one per line (UTF-8; blank lines are skipped).")
    Path promptsFile;

    @Option(names = {"-o", "--out"}, paramLabel = "FILE", required = true,
            description = ".npz to write: 'embeddings' [N, tokens, width] float32 and 'mask' [N, tokens] bool.")
    Path out;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write each prompt's token ids and mask as JSON.")
    Path json;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() {
        if (prompt == null && promptsFile == null) {
            throw new CliException(ExitCodes.USAGE, "give the prompts with --prompt TEXT (repeatable) or --prompts FILE");
        }
        List<String> prompts = SamplerOptions.prompts(prompt, promptsFile);
        Outputs.checkWritable(out, "--out");
        Outputs.checkWritable(json, "--json");
        Outputs.checkDistinct(out, "--out", json, "--json");
        common.applyEngineOptions();
        Path dir = common.modelDirectory();
        try (TextEncoder encoder = TextEncoder.load(dir)) {
            PromptTokenizer.Tokens tokens = encoder.tokenizer().tokenize(prompts);
            TextEmbeddings embeddings = encoder.encode(tokens);
            Outputs.write(out, "--out", o -> TextEmbeddingFiles.write(o, embeddings));
            if (json != null) {
                Outputs.writeJson(describe(encoder, prompts, tokens), json, "--json");
            }
            int cut = 0;
            for (int i = 0; i < tokens.size(); i++) {
                cut += tokens.truncated(i) ? 1 : 0;
            }
            spec.commandLine().getOut().printf("encoded %d prompt(s) to %d tokens x %d -> %s%s%n", prompts.size(),
                    embeddings.tokens(), embeddings.width(), out, cut > 0 ? " (" + cut + " cut to fit)" : "");
            spec.commandLine().getOut().flush();
        } catch (ModelLoadException e) {
            throw new CliException(ExitCodes.MODEL, "cannot load the text encoder: " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, e.getMessage(), e);
        }
        return ExitCodes.OK;
    }

    private static Map<String, Object> describe(TextEncoder encoder, List<String> prompts, PromptTokenizer.Tokens tokens) {
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("prompt", prompts.get(i));
            r.put("ids", tokens.ids(i));
            r.put("mask", tokens.mask(i));
            r.put("truncated", tokens.truncated(i));
            rows.add(r);
        }
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("tokens", encoder.spec().tokens());
        o.put("width", encoder.spec().width());
        o.put("tokenizer", encoder.tokenizer().file().getFileName().toString());
        o.put("prompts", rows);
        return o;
    }
}
