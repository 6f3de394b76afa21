package dev.fora.core.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The registry of policy types: one entry per built-in, specs round-trip, users register their own. */
class PolicyRegistryTest {

    /** Specs of every built-in type, each parsed and printed back. */
    private static final Map<String, List<String>> EXAMPLES = Map.ofEntries(
            Map.entry("none", List.of("none")),
            Map.entry("fora", List.of("fora:1", "fora:3")),
            Map.entry("taylorseer", List.of("taylorseer:4", "taylorseer:5,3")),
            Map.entry("hicache", List.of("hicache:5", "hicache:6,1", "hicache:5,3,0.75")),
            Map.entry("fbcache", List.of("fbcache:0", "fbcache:0.164", "fbcache:1e-12")),
            Map.entry("teacache", List.of("teacache:0.3", "teacache:0.155,0.0002387,0.8699,3.856", "teacache:1e308,-2.5e-9")),
            Map.entry("magcache", List.of("magcache:0.0998,3")),
            Map.entry("deltadit", List.of("deltadit:2,3", "deltadit:3,2,0")),
            Map.entry("pab", List.of("pab:attn=2,mlp=4", "pab:cross=5")),
            Map.entry("mask", List.of("mask:1", "mask:1101100111")),
            Map.entry("warmup", List.of("warmup:2,fora:3", "warmup:1,teacache:0.2,0,1.2")),
            Map.entry("cooldown", List.of("cooldown:2,warmup:2,taylorseer:6,3", "cooldown:1,pab:attn=2,mlp=3")),
            // the core opens no files: schedule:FILE is read by the CLI (ScheduleFiles), refused here (CachePoliciesTest)
            Map.entry("schedule", List.of()));

    @Test
    void theRegistryHasOneEntryPerBuiltInWithUsageAndDescription() {
        List<String> names = BuiltInPolicyTypes.ALL.stream().map(PolicyType::name).toList();
        assertThat(names).containsExactly("none", "fora", "taylorseer", "hicache", "fbcache", "teacache", "magcache", "deltadit",
                "pab", "mask", "warmup", "cooldown", "schedule");
        assertThat(EXAMPLES.keySet()).containsExactlyInAnyOrderElementsOf(names);
        assertThat(CachePolicies.types()).startsWith(BuiltInPolicyTypes.ALL.toArray(new PolicyType[0]));
        for (PolicyType t : BuiltInPolicyTypes.ALL) {
            assertThat(CachePolicies.type(t.name())).containsSame(t);
            assertThat(CachePolicies.grammar()).contains(t.usage()).contains(t.description());
            assertThat(CachePolicies.forms()).contains(t.usage());
        }
        assertThat(BuiltInPolicyTypes.ALL.stream().filter(PolicyType::isDecorator).map(PolicyType::name))
                .containsExactly("warmup", "cooldown");
        assertThat(BuiltInPolicyTypes.ALL.stream().filter(t -> t.tuning().isPresent()).map(PolicyType::name))
                .containsExactly("fbcache", "teacache", "magcache");
    }

    @Test
    void everyBuiltInSpecRoundTripsToAnEqualPolicy() {
        for (PolicyType t : BuiltInPolicyTypes.ALL) {
            for (String spec : EXAMPLES.get(t.name())) {
                CachePolicy p = CachePolicies.parse(spec);
                assertThat(CachePolicies.toSpec(p)).as(spec).isEqualTo(spec);
                // field by field: parse(spec(p)) equals p
                assertThat(CachePolicies.parse(CachePolicies.toSpec(p))).as(spec).usingRecursiveComparison().isEqualTo(p);
            }
        }
    }

    @Test
    void policiesBuiltInCodePrintSpecsThatParseToEqualPolicies() {
        List<CachePolicy> policies = List.of(NoCache.INSTANCE, new StaticIntervalPolicy(7), new TaylorSeerPolicy(5),
                new TaylorSeerPolicy(5, 2), new HiCachePolicy(5, 2, 0.5), HiCachePolicy.of(4), HiCachePolicy.of(4, 3),
                new FirstBlockCachePolicy(1e-300), new TeaCachePolicy(1e308, new double[] {-1e-20, 3}),
                new TeaCachePolicy(0.25), new MagCachePolicy(123456789.5, 2), new DeltaDiTPolicy(2, 3, OptionalInt.empty()),
                new DeltaDiTPolicy(2, 3, OptionalInt.of(7)), new BranchIntervalPolicy(Map.of("mlp", 3)),
                StepMaskPolicy.of("1011"), WarmupCooldown.warmup(3, new StaticIntervalPolicy(2)),
                WarmupCooldown.cooldown(1, HiCachePolicy.of(3)));
        for (CachePolicy p : policies) {
            String spec = CachePolicies.toSpec(p);
            assertThat(CachePolicies.parse(spec)).as(spec).usingRecursiveComparison().isEqualTo(p);
        }
        // one object with both counts prints as the two decorators, which parse to the same decisions
        assertThat(CachePolicies.toSpec(new WarmupCooldown(2, 3, new StaticIntervalPolicy(5))))
                .isEqualTo("warmup:2,cooldown:3,fora:5");
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(delimiter = '|', value = {
        "teacache|teacache threshold T is missing (usage: teacache:T[,C0,C1,...])",
        "magcache|magcache threshold T is missing (usage: magcache:T,K)",
        "fbcache|fbcache threshold T is missing (usage: fbcache:T)",
        "teacache:|teacache threshold T is missing (usage: teacache:T[,C0,C1,...])",
        "warmup|warmup step count K is missing (usage: warmup:K,spec)"})
    void aPolicyNamedWithoutItsArgumentsSaysWhichIsMissingWithTheUsageLine(String spec, String problem) {
        assertThatThrownBy(() -> CachePolicies.parse(spec)).isInstanceOf(PolicySpecException.class)
                .hasMessageContaining(problem)
                .hasMessageNotContaining("unknown policy");
        // a list of specs splits a bare name off as its own spec, for the same error
        assertThat(CachePolicies.split("fora:3," + spec)).containsExactly("fora:3", spec);
    }

    @ParameterizedTest
    @ValueSource(strings = {"taylorseer:3,2147483647", "hicache:3,2147483647", "hicache:3,2147483647,0.5"})
    void anOrderWhoseHistoryLengthWouldOverflowIsAClearError(String spec) {
        assertThatThrownBy(() -> CachePolicies.parse(spec)).isInstanceOf(PolicySpecException.class)
                .hasMessageContaining("order must be at most 2147483646")
                .hasMessageContaining("got 2147483647")
                .hasMessageNotContaining("-2147483648");
        assertThat(CachePolicies.parse("taylorseer:3,2147483646").historyLength()).isEqualTo(Integer.MAX_VALUE);
    }

    @Test
    void hugeAndTinyNumbersPrintInExponentFormAndErrorsEchoABoundedSpec() {
        assertThat(CachePolicies.parse("teacache:1e308").spec()).contains("teacache:1e308");
        assertThat(CachePolicies.parse("fbcache:0.000000000001").spec()).contains("fbcache:1e-12");
        assertThat(CachePolicies.parse("fbcache:123456789012345678901234567890").spec()).contains("fbcache:1.2345678901234568e29");
        // plain where plain is readable
        assertThat(CachePolicies.parse("fbcache:1e-3").spec()).contains("fbcache:0.001");
        assertThat(CachePolicies.parse("teacache:1e20").spec()).contains("teacache:100000000000000000000");
        String digits = "9".repeat(400);
        for (String spec : List.of("fora:" + digits, "fbcache:-" + digits, "fbcache:1e999" + digits, "fora:x" + digits,
                "pab:" + digits + "=2", "warmup:1,".repeat(5000) + "none")) {
            assertThatThrownBy(() -> CachePolicies.parse(spec)).isInstanceOf(PolicySpecException.class)
                    .satisfies(e -> assertThat(e.getMessage().lines().findFirst().orElseThrow()).hasSizeLessThan(400))
                    .satisfies(e -> assertThat(((PolicySpecException) e).spec()).isEqualTo(spec));
        }
    }

    @ParameterizedTest(name = "\"{0}\" is {1}")
    @CsvSource(delimiter = '|', value = {
        "' fora : 3 '|fora:3",
        "'warmup: 2 , fora:3'|warmup:2,fora:3",
        "'warmup:2,\tcooldown :1, taylorseer: 5 ,2'|warmup:2,cooldown:1,taylorseer:5,2",
        "'pab: attn = 2 , mlp=4'|pab:attn=2,mlp=4",
        "'mask: 1101'|mask:1101",
        "'teacache: 0.3 , -0.01 ,1.2'|teacache:0.3,-0.01,1.2",
        "'deltadit:2 ,3, 10'|deltadit:2,3,10",
        "' none '|none"})
    void whitespaceAroundSeparatorsIsIgnoredEverywhere(String spec, String canonical) {
        assertThat(CachePolicies.toSpec(CachePolicies.parse(spec))).isEqualTo(canonical);
        assertThat(CachePolicies.split(spec + " , fora:2")).containsExactly(canonical, "fora:2");
    }

    @ParameterizedTest(name = "\"{0}\"")
    @CsvSource(delimiter = '|', value = {
        "fo ra:3|fo ra",
        "fora:1 0|1 0",
        "mask:11 01|11 01",
        "teacache:0. 3|0. 3",
        "pab:at tn=2|at tn",
        "warmup:2,tay lorseer:5|tay lorseer"})
    void whitespaceInsideANameOrNumberIsAnErrorNamingIt(String spec, String token) {
        assertThatThrownBy(() -> CachePolicies.parse(spec)).isInstanceOf(PolicySpecException.class)
                .hasMessageContaining("whitespace inside \"" + token + "\"")
                .hasMessageContaining("only around ':', ',' and '='");
    }

    /** A user's policy: compute every N-th step and at the last step, reuse otherwise. */
    static final class EveryNth implements CachePolicy {
        static final PolicyType TYPE = PolicyType.of("test-every", "test-every:N",
                "compute every N-th step and the last one, reuse in between",
                a -> new EveryNth(a.positiveInt(0, "interval N")));

        final int n;

        EveryNth(int n) {
            this.n = n;
        }

        @Override
        public CacheDecider newDecider(GenerationInfo info) {
            return ctx -> ctx.step().step() % n == 0 || ctx.step().isLast() ? Decision.COMPUTE : Decision.REUSE;
        }

        @Override
        public Optional<String> spec() {
            return Optional.of(TYPE.spec(n));
        }
    }

    @Test
    void aUserRegisteredTypeIsParsedPrintedSplitAndListedLikeABuiltIn() {
        CachePolicies.register(EveryNth.TYPE);
        assertThat(CachePolicies.type("test-every")).containsSame(EveryNth.TYPE);
        CachePolicy p = CachePolicies.parse(" test-every: 4 ");
        assertThat(p).isInstanceOf(EveryNth.class);
        assertThat(CachePolicies.toSpec(p)).isEqualTo("test-every:4");
        assertThat(CachePolicies.parse("warmup:2,test-every:3").spec()).contains("warmup:2,test-every:3");
        assertThat(CachePolicies.split("fora:2,test-every:3,warmup:1,test-every:5"))
                .containsExactly("fora:2", "test-every:3", "warmup:1,test-every:5");
        assertThat(CachePolicies.grammar()).contains("| test-every:N").contains("compute every N-th step");
        assertThat(CachePolicies.forms()).endsWith(", test-every:N");
        assertThatThrownBy(() -> CachePolicies.parse("test-every:0")).isInstanceOf(PolicySpecException.class)
                .hasMessageContaining("test-every interval N must be >= 1, got 0 (usage: test-every:N)");
        assertThatThrownBy(() -> CachePolicies.parse("test-every:2,2")).isInstanceOf(PolicySpecException.class)
                .hasMessageContaining("test-every takes at most 1 argument(s), got 2");
        // it runs
        assertThat(dev.fora.core.testing.PolicyHarness.builder().steps(12).build().run(p).computeFraction())
                .isLessThan(0.5).isGreaterThan(0.2);
        // names are unique and well formed
        assertThatThrownBy(() -> CachePolicies.register(EveryNth.TYPE)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("registered already");
        assertThatThrownBy(() -> CachePolicies.register(PolicyType.of("fora", "fora:N", "again", a -> NoCache.INSTANCE)))
                .hasMessageContaining("registered already");
        assertThatThrownBy(() -> PolicyType.of("Fora2", "Fora2:N", "x", a -> NoCache.INSTANCE))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("lower-case");
        assertThatThrownBy(() -> PolicyType.of("mine", "other:N", "x", a -> NoCache.INSTANCE))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("must start with \"mine:\"");
    }

    /**
     * The policies page (docs/policies.md, or the README where the table still lives) names
     * exactly the built-in entries: its grammar block lists their usage lines in registry order,
     * and its table of where each rule comes from has a row for each.
     */
    @Test
    void thePolicyDocsNameExactlyTheRegistryEntries() throws IOException {
        Path docs = Path.of("..", "docs", "policies.md");
        Path page = Files.exists(docs) ? docs : Path.of("..", "README.md");
        String text = Files.readString(page);

        List<String> grammarUsages = new ArrayList<>();
        Matcher block = Pattern.compile("(?m)^spec := .*(?:\\n\\s+\\| .*)*").matcher(text);
        assertThat(block.find()).as("a grammar block in %s", page).isTrue();
        for (String line : block.group().split("\\n")) {
            grammarUsages.add(line.replaceFirst("^(spec :=|\\s+\\|)\\s+", "").split("\\s+")[0]);
        }
        assertThat(grammarUsages).as("grammar block of %s", page)
                .containsExactlyElementsOf(BuiltInPolicyTypes.ALL.stream().map(PolicyType::usage).toList());

        Matcher table = Pattern.compile("(?m)^\\| spec \\| class \\|.*\\n\\|[-:| ]+\\|\\n((?:\\|.*\\n)+)").matcher(text);
        assertThat(table.find()).as("a table with a spec column in %s", page).isTrue();
        Set<String> named = new LinkedHashSet<>();
        for (String row : table.group(1).split("\\n")) {
            Matcher spec = Pattern.compile("`([a-z][a-z0-9_-]*)[:`]").matcher(row.split("\\|")[1]);
            while (spec.find()) {
                named.add(spec.group(1));
            }
        }
        assertThat(named).as("spec column of %s", page).containsExactlyInAnyOrderElementsOf(
                BuiltInPolicyTypes.ALL.stream().map(PolicyType::name).collect(Collectors.toList()));
    }
}
