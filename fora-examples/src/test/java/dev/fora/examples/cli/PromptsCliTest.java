package dev.fora.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.core.model.TextEmbeddings;
import dev.fora.djl.TextEmbeddingFiles;
import dev.fora.examples.cli.CommandsTest.Result;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Prompts to pixels with the small PixArt-α's text encoder: {@code generate --prompt} writes the
 * same PNG, bit for bit, as {@code encode} followed by {@code generate --text-embeddings}; and the
 * errors of the prompt options.
 */
class PromptsCliTest {

    static final Path PIXART = FamiliesCliTest.PIXART;
    static final String[] SAMPLING = {"--sampler", "dpm-solver++", "--steps", "6", "--cfg", "4.5", "--policy", "fora:2",
        "--threads", "1", "--quiet"};

    @TempDir
    Path tmp;

    private static String[] args(String[] head, String... tail) {
        return Stream.concat(Stream.concat(Stream.of(head), Stream.of(SAMPLING)), Stream.of(tail)).toArray(String[]::new);
    }

    @Test
    void promptsGiveTheSamePngAsEncodeThenTextEmbeddings() throws Exception {
        Path npz = tmp.resolve("p.npz");
        Path json = tmp.resolve("p.json");
        Result e = CommandsTest.run("encode", "--model", PIXART.toString(), "--prompt", "a red square", "--prompt", "two cats",
                "--threads", "1", "--out", npz.toString(), "--json", json.toString());
        assertThat(e.exitCode()).as(e.err()).isZero();
        assertThat(e.out()).contains("encoded 2 prompt(s) to 8 tokens x 32");
        TextEmbeddings read = TextEmbeddingFiles.read(npz);
        assertThat(read.size()).isEqualTo(2);
        JsonObject o = JsonParser.parseString(Files.readString(json, StandardCharsets.UTF_8)).getAsJsonObject();
        assertThat(o.get("tokens").getAsInt()).isEqualTo(8);
        JsonObject first = o.getAsJsonArray("prompts").get(0).getAsJsonObject();
        assertThat(first.get("prompt").getAsString()).isEqualTo("a red square");
        assertThat(first.getAsJsonArray("ids")).hasSize(8);
        boolean[] mask = read.mask();
        for (int t = 0; t < 8; t++) {
            assertThat(first.getAsJsonArray("mask").get(t).getAsLong()).isEqualTo(mask[t] ? 1L : 0L);
        }

        Path viaPrompts = tmp.resolve("a.png");
        Result a = CommandsTest.run(args(new String[] {"generate", "--model", PIXART.toString(), "--prompt", "a red square",
            "--prompt", "two cats"}, "--out", viaPrompts.toString()));
        assertThat(a.exitCode()).as(a.err()).isZero();
        Path viaFile = tmp.resolve("b.png");
        Result b = CommandsTest.run(args(new String[] {"generate", "--model", PIXART.toString(), "--text-embeddings",
            npz.toString()}, "--out", viaFile.toString()));
        assertThat(b.exitCode()).as(b.err()).isZero();
        Path lines = tmp.resolve("prompts.txt");
        Files.writeString(lines, "a red square\n\ntwo cats\n", StandardCharsets.UTF_8);
        Path viaLines = tmp.resolve("c.png");
        Result c = CommandsTest.run(args(new String[] {"generate", "--model", PIXART.toString(), "--prompts",
            lines.toString()}, "--out", viaLines.toString()));
        assertThat(c.exitCode()).as(c.err()).isZero();
        assertThat(Files.readAllBytes(viaPrompts)).isEqualTo(Files.readAllBytes(viaFile)).isEqualTo(Files.readAllBytes(viaLines));
        // and the prompts matter: other prompts give another image
        Path other = tmp.resolve("d.png");
        Result d = CommandsTest.run(args(new String[] {"generate", "--model", PIXART.toString(), "--prompt", "a red square",
            "--prompt", "a green lake"}, "--out", other.toString()));
        assertThat(d.exitCode()).as(d.err()).isZero();
        assertThat(Files.readAllBytes(other)).isNotEqualTo(Files.readAllBytes(viaPrompts));
    }

    @Test
    void promptErrors() throws Exception {
        Result r = CommandsTest.run(args(new String[] {"generate", "--model", FamiliesCliTest.DIT.toString(), "--prompt", "x"},
                "--out", tmp.resolve("a.png").toString()));
        assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
        assertThat(r.err()).contains("conditioned on class labels");
        r = CommandsTest.run(args(new String[] {"generate", "--model", PIXART.toString(), "--prompt", "x", "--text-embeddings",
            FamiliesCliTest.PROMPTS.toString()}, "--out", tmp.resolve("b.png").toString()));
        assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
        assertThat(r.err()).contains("not both");
        Path empty = tmp.resolve("empty.txt");
        Files.writeString(empty, "\n  \n");
        r = CommandsTest.run("encode", "--model", PIXART.toString(), "--prompts", empty.toString(), "--out",
                tmp.resolve("e.npz").toString());
        assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
        assertThat(r.err()).contains("has no prompt");
        r = CommandsTest.run("encode", "--model", PIXART.toString(), "--out", tmp.resolve("f.npz").toString());
        assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
        assertThat(r.err()).contains("--prompt TEXT");

        Path noEncoder = tmp.resolve("no-encoder");
        Files.createDirectories(noEncoder);
        try (Stream<Path> files = Files.list(PIXART)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.copy(f, noEncoder.resolve(f.getFileName()));
            }
        }
        Path manifest = noEncoder.resolve("manifest.json");
        JsonObject m = JsonParser.parseString(Files.readString(manifest)).getAsJsonObject();
        m.getAsJsonObject("files").remove("text_encoder");
        Files.writeString(manifest, m.toString());
        r = CommandsTest.run(args(new String[] {"generate", "--model", noEncoder.toString(), "--prompt", "x"}, "--out",
                tmp.resolve("g.png").toString()));
        assertThat(r.exitCode()).isEqualTo(ExitCodes.MODEL);
        assertThat(r.err()).contains("no text encoder", "fora_tools.export_t5");
    }
}
