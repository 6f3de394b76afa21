package dev.fora.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonParser;
import dev.fora.core.cache.CacheDecider;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.Decision;
import dev.fora.core.cache.GenerationInfo;
import dev.fora.core.cache.PolicyType;
import dev.fora.examples.cli.CommandsTest.Result;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Policy specs through the {@code fora} command: help from the registry, one-line errors, a registered type. */
class PolicySpecsCliTest {

    @TempDir
    Path tmp;

    /** A program's own policy type: compute the even steps and the last one. */
    static final class EvenSteps implements CachePolicy {
        static final PolicyType TYPE = PolicyType.of("cli-even", "cli-even:K", "compute every K-th step (test type)",
                a -> new EvenSteps(a.positiveInt(0, "interval K")));

        final int k;

        EvenSteps(int k) {
            this.k = k;
        }

        @Override
        public CacheDecider newDecider(GenerationInfo info) {
            return ctx -> ctx.step().step() % k == 0 || ctx.step().isLast() ? Decision.COMPUTE : Decision.REUSE;
        }

        @Override
        public Optional<String> spec() {
            return Optional.of(TYPE.spec(k));
        }
    }

    @BeforeAll
    static void register() {
        CachePolicies.register(EvenSteps.TYPE);
    }

    @Test
    void theHelpOfEveryCommandTakingASpecListsEveryRegisteredType() {
        for (String command : new String[] {"generate", "compare", "bench", "soak", "replay"}) {
            Result r = CommandsTest.run(command, "--help");
            assertThat(r.exitCode()).isZero();
            for (PolicyType t : CachePolicies.types()) {
                assertThat(r.out()).as(command).containsPattern("(?m)^  " + java.util.regex.Pattern.quote(t.usage())
                        + " +" + java.util.regex.Pattern.quote(t.description()) + "$");
            }
        }
        assertThat(CommandsTest.run("calibrate", "--help").out().replaceAll("\\s+", " "))
                .contains("The policy to calibrate: fbcache, teacache, magcache.");
    }

    @Test
    void aRegisteredTypeRunsThroughTheCommand() throws Exception {
        Path json = tmp.resolve("g.json");
        Result r = CommandsTest.ok(CommandsTest.args("generate", "--model", TestModels.model(), "--labels", "1",
                "--steps", 6, "--policy", " cli-even: 2 ", "--out", tmp.resolve("g.png"), "--json", json, "--quiet"));
        assertThat(r.out()).contains("cli-even:2");
        String policy = JsonParser.parseString(Files.readString(json)).getAsJsonObject().get("policy").getAsString();
        assertThat(policy).isEqualTo("cli-even:2");
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "teacache|teacache threshold T is missing (usage: teacache:T[,C0,C1,...])",
        "magcache|magcache threshold T is missing (usage: magcache:T,K)",
        "fbcache|fbcache threshold T is missing (usage: fbcache:T)",
        "taylorseer:3,2147483647|order must be at most 2147483646 (the cache keeps order + 1 computed values), got 2147483647 (usage: taylorseer:N[,O])",
        "fo ra:3|whitespace inside \"fo ra\"",
        "cli-even:0|cli-even interval K must be >= 1, got 0 (usage: cli-even:K)"})
    void specErrorsAreUsageErrorsOnOneLine(String spec, String problem) {
        for (String command : new String[] {"generate", "compare"}) {
            Result r = CommandsTest.run(command, "--policy", spec, "--out", tmp.resolve("x.png").toString());
            assertThat(r.exitCode()).as(r.err()).isEqualTo(ExitCodes.USAGE);
            String err = r.err().strip();
            assertThat(err.lines().count()).as(err).isEqualTo(1);
            assertThat(err).contains(problem).doesNotContain("unknown policy", "Exception", "\tat ");
            assertThat(err.length()).isLessThan(400);
        }
    }

    @Test
    void compareWarmsAStepMaskUpAtItsOwnStepCount() throws Exception {
        // the warm-up round runs other policies for at most 10 steps; a 12-step mask refuses 10
        String mask = "warmup:1,mask:101101101101";
        Result r = CommandsTest.ok(CommandsTest.args("compare", "--model", TestModels.model(), "--labels", "1", "--steps", 12,
                "--warmup", 1, "--policy", "fora:2," + mask, "--out", tmp.resolve("c.png"), "--quiet"));
        assertThat(r.out()).contains(mask);
    }

    @Test
    void aHugeThresholdIsReportedInItsShortForm() throws Exception {
        Result r = CommandsTest.ok(CommandsTest.args("generate", "--model", TestModels.model(), "--labels", "1",
                "--steps", 4, "--policy", "teacache:1e308", "--out", tmp.resolve("t.png"), "--quiet"));
        assertThat(r.out()).contains("teacache:1e308").doesNotContain("0".repeat(40));
    }
}
