package dev.fora.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.examples.cli.CommandsTest.Result;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CLI on the small models of the families (fora-djl's test resources): a PixArt-α with
 * --text-embeddings and a latent DiT, both decoding to PNGs through their latent decoder; and the
 * usage errors of text conditioning and guided channels.
 */
class FamiliesCliTest {

    static final Path FAMILIES = Path.of("../fora-djl/src/test/resources/families");
    static final Path PIXART = FAMILIES.resolve("pixart-small");
    static final Path DIT = FAMILIES.resolve("dit-latent-small");
    static final Path PROMPTS = FAMILIES.resolve("pixart-small-prompts.npz");

    @TempDir
    Path tmp;

    private static void usageError(Result r, String... fragments) {
        assertThat(r.exitCode()).as(r.err()).isEqualTo(ExitCodes.USAGE);
        String err = r.err().strip();
        assertThat(err.lines().count()).as(err).isEqualTo(1);
        assertThat(err).contains(fragments).doesNotContain("\tat ");
    }

    @Test
    void generateDecodesPixArtLatentsToPngs() throws Exception {
        Path grid = tmp.resolve("grid.png");
        Result r = CommandsTest.run("generate", "--model", PIXART.toString(), "--text-embeddings", PROMPTS.toString(),
                "--labels", "0,2", "--per-class", "2", "--sampler", "dpm-solver++", "--steps", "6", "--cfg", "4.5",
                "--policy", "fora:2", "--threads", "1", "--quiet", "--out", grid.toString(), "--images", tmp.toString());
        assertThat(r.exitCode()).as(r.err()).isZero();
        assertThat(r.out()).contains("4 (2 prompts x 2), dpm-solver++ 6 steps, cfg 4.5", "decoder           16x16 images");
        for (int i = 0; i < 4; i++) {
            BufferedImage img = ImageIO.read(tmp.resolve("image_" + i + ".png").toFile());
            assertThat(img.getWidth()).isEqualTo(16);
            assertThat(img.getHeight()).isEqualTo(16);
        }
        assertThat(Files.exists(tmp.resolve("image_4.png"))).isFalse();
        assertThat(ImageIO.read(grid.toFile())).isNotNull();
    }

    @Test
    void compareAndBenchRunOnTheLatentDiTAndThePixArt() {
        Result c = CommandsTest.run("compare", "--model", DIT.toString(), "--labels", "1,4", "--steps", "4",
                "--policy", "fora:2", "--guided-channels", "4", "--threads", "1", "--quiet", "--out",
                tmp.resolve("c.png").toString());
        assertThat(c.exitCode()).as(c.err()).isZero();
        Result b = CommandsTest.run("bench", "--model", PIXART.toString(), "--text-embeddings", PROMPTS.toString(),
                "--sampler", "dpm-solver++", "--steps", "4", "--batch", "2", "--repeats", "1", "--warmup", "0",
                "--policy", "fora:2", "--threads", "1", "--quiet", "--json", tmp.resolve("b.json").toString());
        assertThat(b.exitCode()).as(b.err()).isZero();
        assertThat(b.out()).contains("latent decoder: median", "share of each path's time");
    }

    @Test
    void textConditioningUsageErrors() throws Exception {
        usageError(CommandsTest.run("generate", "--model", PIXART.toString(), "--steps", "2", "--quiet", "--out",
                tmp.resolve("a.png").toString()), "is conditioned on text", "--text-embeddings FILE");
        usageError(CommandsTest.run("generate", "--model", DIT.toString(), "--text-embeddings", PROMPTS.toString(),
                "--steps", "2", "--quiet", "--out", tmp.resolve("b.png").toString()), "conditioned on class labels");
        usageError(CommandsTest.run("generate", "--model", PIXART.toString(), "--text-embeddings", PROMPTS.toString(),
                "--labels", "3", "--steps", "2", "--quiet", "--out", tmp.resolve("c.png").toString()),
                "prompt 3 at position 0 is out of range: there are 3 prompts");
        usageError(CommandsTest.run("generate", "--model", PIXART.toString(), "--text-embeddings", PROMPTS.toString(),
                "--guided-channels", "5", "--steps", "2", "--quiet", "--out", tmp.resolve("d.png").toString()),
                "--guided-channels must be from 1 to the model's 4 latent channels");
        Path junk = tmp.resolve("junk.npz");
        Files.writeString(junk, "not an archive");
        usageError(CommandsTest.run("generate", "--model", PIXART.toString(), "--text-embeddings", junk.toString(),
                "--steps", "2", "--quiet", "--out", tmp.resolve("e.png").toString()), "--text-embeddings", "junk.npz");
        usageError(CommandsTest.run("generate", "--model", PIXART.toString(), "--text-embeddings",
                tmp.resolve("missing.npz").toString(), "--steps", "2", "--quiet", "--out", tmp.resolve("f.png").toString()),
                "--text-embeddings: cannot read");
        // embeddings of another width (a single .npy array, no mask)
        Path narrow = tmp.resolve("narrow.npy");
        Files.write(narrow, npy(new long[] {1, 8, 16}, new byte[8 * 16 * 4]));
        usageError(CommandsTest.run("generate", "--model", PIXART.toString(), "--text-embeddings", narrow.toString(),
                "--steps", "2", "--quiet", "--out", tmp.resolve("g.png").toString()),
                "text embeddings of 8 tokens x 16 do not fit the model, which takes 8 tokens x 32");
    }

    /** A float32 .npy file (format 1.0). */
    static byte[] npy(long[] shape, byte[] data) {
        StringBuilder dims = new StringBuilder();
        for (long d : shape) {
            dims.append(d).append(", ");
        }
        String header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims.toString().strip() + "), }";
        header = header + " ".repeat((64 - (10 + header.length() + 1) % 64) % 64) + "\n";
        byte[] h = header.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
        byte[] out = new byte[10 + h.length + data.length];
        byte[] magic = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (byte) (h.length & 0xff), (byte) (h.length >> 8)};
        System.arraycopy(magic, 0, out, 0, 10);
        System.arraycopy(h, 0, out, 10, h.length);
        System.arraycopy(data, 0, out, 10 + h.length, data.length);
        return out;
    }
}
