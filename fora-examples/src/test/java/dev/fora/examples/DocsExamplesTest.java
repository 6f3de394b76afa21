package dev.fora.examples;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Keeps README.md and docs/*.md honest: every Java example in them appears in a test source (which
 * the build compiles and runs), every relative link resolves to a file of the repository (and a
 * heading, for {@code #anchors} into Markdown), and the README's test command is what CI runs.
 *
 * <p>A snippet "appears" when its lines, trimmed and without blank lines, occur in one test file in
 * the same order, each within {@value #MAX_GAP} lines of the previous one (so a test may interleave
 * its assertions); its {@code import} lines may sit anywhere in that file.
 */
class DocsExamplesTest {

    /** Source lines a test may put between two consecutive lines of a snippet. */
    private static final int MAX_GAP = 20;

    private static final Pattern LINK = Pattern.compile("\\[[^\\]]*\\]\\(([^)\\s]+)\\)");

    private static final Path ROOT = repositoryRoot();

    @Test
    void everyJavaExampleOfTheDocsIsInACompiledTest() throws IOException {
        List<Path> sources = testSources();
        List<String> missing = new ArrayList<>();
        int checked = 0;
        for (Path doc : docs()) {
            for (Snippet snippet : javaSnippets(doc)) {
                checked++;
                if (sources.stream().noneMatch(source -> contains(lines(source), snippet.lines))) {
                    missing.add(ROOT.relativize(doc) + ":" + snippet.line + " (first line: " + snippet.lines.get(0) + ")");
                }
            }
        }
        assertThat(missing).as("Java examples of the docs found in no test source (update the test or the doc)").isEmpty();
        assertThat(checked).as("Java examples checked").isGreaterThanOrEqualTo(8);
    }

    @Test
    void everyRelativeLinkResolves() throws IOException {
        List<String> broken = new ArrayList<>();
        int checked = 0;
        for (Path doc : docs()) {
            for (String target : links(doc)) {
                if (target.matches("^[a-z][a-z0-9+.-]*:.*")) {
                    continue; // https:, mailto: ...
                }
                checked++;
                int hash = target.indexOf('#');
                String path = hash < 0 ? target : target.substring(0, hash);
                String anchor = hash < 0 ? null : target.substring(hash + 1);
                Path file = path.isEmpty() ? doc : doc.getParent().resolve(path).normalize();
                if (!file.startsWith(ROOT) || !Files.exists(file)) {
                    broken.add(ROOT.relativize(doc) + ": " + target + " (no such file)");
                } else if (anchor != null && file.toString().endsWith(".md") && !anchors(file).contains(anchor)) {
                    broken.add(ROOT.relativize(doc) + ": " + target + " (no such heading in " + ROOT.relativize(file) + ")");
                }
            }
        }
        assertThat(broken).as("broken relative links").isEmpty();
        assertThat(checked).as("relative links checked").isGreaterThanOrEqualTo(20);
    }

    @Test
    void theReadmesTestCommandIsWhatCiRuns() throws IOException {
        List<String> readme = Files.readAllLines(ROOT.resolve("README.md"));
        int comment = -1;
        for (int i = 0; i < readme.size(); i++) {
            if (readme.get(i).startsWith("# run the tests")) {
                comment = i;
                break;
            }
        }
        assertThat(comment).as("the README's '# run the tests' line").isNotNegative();
        String command = readme.get(comment + 1).trim();
        assertThat(Files.readAllLines(ROOT.resolve(".ci/run")).stream().map(String::trim))
                .as(".ci/run runs the README's test command").contains(command);
    }

    /** The README's short table of measured results is the DDIM-50 JSON that policies.md's command wrote. */
    @Test
    void theReadmesMeasuredTableIsTheMeasuredJson() throws IOException {
        Map<String, JsonObject> measured = new HashMap<>();
        for (JsonElement e : JsonParser.parseString(Files.readString(ROOT.resolve("fora-examples/docs/policies-ddim50.json")))
                .getAsJsonArray()) {
            measured.put(e.getAsJsonObject().get("policy").getAsString(), e.getAsJsonObject());
        }
        List<String> mismatches = new ArrayList<>();
        int rows = 0;
        for (String line : Files.readAllLines(ROOT.resolve("README.md"))) {
            if (!line.startsWith("| `")) {
                continue;
            }
            String[] cells = line.split("\\|");
            String policy = cells[1].trim().replace("`", "");
            JsonObject m = measured.get(policy);
            if (m == null) {
                continue; // a table of another kind
            }
            rows++;
            JsonElement psnr = m.get("psnr_db");
            String expected = String.format(Locale.ROOT, "%.2fx | %.2fx | %s", m.get("flop_speedup").getAsDouble(),
                    m.get("measured_speedup").getAsDouble(),
                    psnr == null || psnr.isJsonNull() ? "inf" : String.format(Locale.ROOT, "%.2f", psnr.getAsDouble()));
            String actual = cells[3].trim() + " | " + cells[4].trim() + " | " + cells[5].trim();
            if (!actual.equals(expected)) {
                mismatches.add(policy + ": README " + actual + ", JSON " + expected);
            }
        }
        assertThat(mismatches).as("README rows against fora-examples/docs/policies-ddim50.json").isEmpty();
        assertThat(rows).as("README rows of measured policies").isGreaterThanOrEqualTo(9);
    }

    @Test
    void theReadmeStaysAFrontDoor() throws IOException {
        assertThat(Files.readAllLines(ROOT.resolve("README.md"))).hasSizeLessThanOrEqualTo(250);
    }

    @Test
    void theMatcherFindsInterleavedLinesAndRejectsDrift() {
        List<String> source = List.of("import a.B;", "void f() {", "int x = 1;", "assertThat(x);", "x++;", "}");
        assertThat(contains(source, List.of("import a.B;", "int x = 1;", "x++;"))).isTrue();
        assertThat(contains(source, List.of("int x = 1;", "x--;"))).isFalse();
        assertThat(contains(source, List.of("x++;", "int x = 1;"))).isFalse();
        assertThat(contains(source, List.of("import a.C;", "x++;"))).isFalse();
        assertThat(slug("`fora calibrate`, `fora record`")).isEqualTo("fora-calibrate-fora-record");
        assertThat(slug("Model families: latent DiTs and PixArt-α")).isEqualTo("model-families-latent-dits-and-pixart-α");
    }

    /** Whether {@code snippet}'s lines occur in {@code source} in order, with gaps of at most {@link #MAX_GAP}. */
    static boolean contains(List<String> source, List<String> snippet) {
        List<String> body = new ArrayList<>();
        for (String line : snippet) {
            if (line.startsWith("import ")) {
                if (!source.contains(line)) {
                    return false;
                }
            } else {
                body.add(line);
            }
        }
        if (body.isEmpty()) {
            return true;
        }
        for (int start = 0; start < source.size(); start++) {
            if (!source.get(start).equals(body.get(0))) {
                continue;
            }
            int at = start;
            int matched = 1;
            while (matched < body.size()) {
                int next = -1;
                for (int j = at + 1; j < source.size() && j <= at + 1 + MAX_GAP; j++) {
                    if (source.get(j).equals(body.get(matched))) {
                        next = j;
                        break;
                    }
                }
                if (next < 0) {
                    break;
                }
                at = next;
                matched++;
            }
            if (matched == body.size()) {
                return true;
            }
        }
        return false;
    }

    /** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
    static String slug(String heading) {
        StringBuilder b = new StringBuilder();
        heading.trim().toLowerCase(Locale.ROOT).codePoints().forEach(c -> {
            if (Character.isLetterOrDigit(c) || c == '-' || c == '_') {
                b.appendCodePoint(c);
            } else if (c == ' ') {
                b.append('-');
            }
        });
        return b.toString();
    }

    private record Snippet(int line, List<String> lines) {
    }

    private static List<Snippet> javaSnippets(Path doc) throws IOException {
        List<String> text = Files.readAllLines(doc);
        List<Snippet> snippets = new ArrayList<>();
        for (int i = 0; i < text.size(); i++) {
            if (!text.get(i).trim().equals("```java")) {
                continue;
            }
            List<String> body = new ArrayList<>();
            int j = i + 1;
            for (; j < text.size() && !text.get(j).trim().startsWith("```"); j++) {
                if (!text.get(j).isBlank()) {
                    body.add(text.get(j).trim());
                }
            }
            if (!body.isEmpty()) {
                snippets.add(new Snippet(i + 1, body));
            }
            i = j;
        }
        return snippets;
    }

    /** The link targets of a Markdown file, outside fenced code blocks. */
    private static List<String> links(Path doc) throws IOException {
        List<String> targets = new ArrayList<>();
        boolean code = false;
        for (String line : Files.readAllLines(doc)) {
            if (line.trim().startsWith("```")) {
                code = !code;
                continue;
            }
            if (code) {
                continue;
            }
            Matcher m = LINK.matcher(line);
            while (m.find()) {
                targets.add(m.group(1));
            }
        }
        return targets;
    }

    private static Set<String> anchors(Path markdown) throws IOException {
        Set<String> anchors = new HashSet<>();
        boolean code = false;
        for (String line : Files.readAllLines(markdown)) {
            if (line.trim().startsWith("```")) {
                code = !code;
            } else if (!code && line.startsWith("#")) {
                String base = slug(line.replaceFirst("^#+\\s*", ""));
                String anchor = base;
                for (int n = 1; !anchors.add(anchor); n++) {
                    anchor = base + "-" + n;
                }
            }
        }
        return anchors;
    }

    private static List<Path> docs() throws IOException {
        List<Path> docs = new ArrayList<>();
        docs.add(ROOT.resolve("README.md"));
        try (Stream<Path> files = Files.walk(ROOT.resolve("docs"))) {
            files.filter(p -> p.toString().endsWith(".md")).sorted().forEach(docs::add);
        }
        return docs;
    }

    /** The Java test sources of every module (each top-level directory's {@code src/test/java}). */
    private static List<Path> testSources() throws IOException {
        List<Path> sources = new ArrayList<>();
        try (Stream<Path> modules = Files.list(ROOT)) {
            for (Path tests : modules.map(m -> m.resolve("src/test/java")).filter(Files::isDirectory).sorted().toList()) {
                try (Stream<Path> files = Files.walk(tests)) {
                    files.filter(p -> p.toString().endsWith(".java")).forEach(sources::add);
                }
            }
        }
        assertThat(sources).as("test sources under */src/test/java").isNotEmpty();
        return sources;
    }

    private static List<String> lines(Path file) {
        try {
            return Files.readAllLines(file).stream().map(String::trim).filter(l -> !l.isEmpty()).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The directory with README.md, docs/ and .ci/: the working directory or one above it. */
    private static Path repositoryRoot() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.isRegularFile(dir.resolve("README.md")) && Files.isDirectory(dir.resolve("docs"))
                    && Files.isDirectory(dir.resolve(".ci"))) {
                return dir;
            }
        }
        throw new IllegalStateException("no repository root (README.md, docs/, .ci/) above " + Path.of("").toAbsolutePath());
    }
}
