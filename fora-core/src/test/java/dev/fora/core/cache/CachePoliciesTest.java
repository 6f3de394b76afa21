package dev.fora.core.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fora.core.model.DiTConfig;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class CachePoliciesTest {

    private static final DiTConfig CONFIG = DiTConfig.classConditional(8, 4, 2, 32, 4, 4, 10, true);

    /** Branch indices of {@code BlockLayout.DIT}. */
    private static final int ATTN = 0;
    private static final int MLP = 1;

    /** One unguided image of {@link #CONFIG} over {@code k} steps. */
    private static GenerationInfo info(int k) {
        return new GenerationInfo(k, CONFIG, 1, false, 1);
    }

    @ParameterizedTest
    @ValueSource(strings = {"none", "fora:1", "fora:3", "fora:12", "taylorseer:4", "taylorseer:5,2", "taylorseer:7,3",
        "hicache:5", "hicache:6,1", "hicache:6,3,0.7", "fbcache:0", "fbcache:0.12", "fbcache:2", "teacache:0.3",
        "teacache:0.25,0.01,1.5,-0.25", "teacache:0.0001", "magcache:0.06,3", "magcache:1,1", "deltadit:2,3",
        "deltadit:3,2,0", "deltadit:3,2,20", "pab:attn=2,mlp=4", "pab:mlp=3", "pab:cross=5,attn=2",
        "mask:1", "mask:1101100111", "warmup:2,fora:3", "cooldown:5,fora:2", "warmup:2,cooldown:3,fora:5",
        "warmup:1,mask:1001", "cooldown:1,warmup:3,none", "warmup:3,taylorseer:6,2", "warmup:2,cooldown:2,teacache:0.2,0,1.2",
        "cooldown:2,pab:attn=2,mlp=3"})
    void specsRoundTrip(String spec) {
        CachePolicy policy = CachePolicies.parse(spec);
        assertThat(policy.spec()).contains(spec);
        assertThat(CachePolicies.toSpec(policy)).isEqualTo(spec);
        assertThat(CachePolicies.parse(CachePolicies.toSpec(policy)).spec()).contains(spec);
    }

    @ParameterizedTest(name = "\"{0}\" -> {1}")
    @CsvSource(delimiter = '|', value = {
        "fbcache:0.10|fbcache:0.1",
        "fbcache:1e-3|fbcache:0.001",
        "fbcache:.5|fbcache:0.5",
        "teacache:0.30,1.0,2.50|teacache:0.3,1,2.5",
        "magcache:0.060,3|magcache:0.06,3",
        "hicache:5,2,0.50|hicache:5,2,0.5",
        "taylorseer:5,1|taylorseer:5",
        " pab:attn=2, mlp=4 |pab:attn=2,mlp=4"})
    void numbersComeBackInTheirShortestFormAndParseToTheSamePolicy(String spec, String canonical) {
        String printed = CachePolicies.toSpec(CachePolicies.parse(spec));
        assertThat(printed).isEqualTo(canonical);
        assertThat(CachePolicies.toSpec(CachePolicies.parse(printed))).isEqualTo(canonical);
    }

    @Test
    void parsesToThePolicyTheSpecNames() {
        assertThat(CachePolicies.parse("none")).isSameAs(NoCache.INSTANCE);
        assertThat(CachePolicies.parse(" fora:3 ")).isInstanceOf(StaticIntervalPolicy.class);
        assertThat(((StaticIntervalPolicy) CachePolicies.parse("fora:7")).interval()).isEqualTo(7);
        assertThat(((StepMaskPolicy) CachePolicies.parse("mask:1110")).length()).isEqualTo(4);
        WarmupCooldown w = (WarmupCooldown) CachePolicies.parse("warmup:2,fora:3");
        assertThat(w.inner().spec()).contains("fora:3");
        TaylorSeerPolicy t = (TaylorSeerPolicy) CachePolicies.parse("taylorseer:5,3");
        assertThat(t.interval()).isEqualTo(5);
        assertThat(t.order()).isEqualTo(3);
        assertThat(t.historyLength()).isEqualTo(4);
        assertThat(((TaylorSeerPolicy) CachePolicies.parse("taylorseer:5")).order()).isEqualTo(1);
        HiCachePolicy h = (HiCachePolicy) CachePolicies.parse("hicache:6");
        assertThat(h.order()).isEqualTo(HiCachePolicy.DEFAULT_ORDER);
        assertThat(h.sigma()).isEqualTo(HiCachePolicy.DEFAULT_SIGMA);
        assertThat(((HiCachePolicy) CachePolicies.parse("hicache:6,1,0.7")).sigma()).isEqualTo(0.7);
        assertThat(((FirstBlockCachePolicy) CachePolicies.parse("fbcache:0.2")).threshold()).isEqualTo(0.2);
        TeaCachePolicy tea = (TeaCachePolicy) CachePolicies.parse("teacache:0.3,0.5,2");
        assertThat(tea.threshold()).isEqualTo(0.3);
        assertThat(tea.rescale()).containsExactly(0.5, 2.0);
        assertThat(tea.rescaled(0.1)).isEqualTo(0.5 + 2 * 0.1);
        assertThat(new TeaCachePolicy(0.1, new double[] {-1, 1}).rescaled(0.5)).isZero();
        assertThat(new TeaCachePolicy(0.1).rescaled(0.25)).isEqualTo(0.25);
        MagCachePolicy mag = (MagCachePolicy) CachePolicies.parse("magcache:0.06,3");
        assertThat(mag.threshold()).isEqualTo(0.06);
        assertThat(mag.maxSkips()).isEqualTo(3);
        DeltaDiTPolicy delta = (DeltaDiTPolicy) CachePolicies.parse("deltadit:2,3");
        assertThat(delta.boundary(50)).isEqualTo(25);
        assertThat(((DeltaDiTPolicy) CachePolicies.parse("deltadit:2,3,10")).boundary(50)).isEqualTo(10);
        assertThat(((BranchIntervalPolicy) CachePolicies.parse("pab:mlp=4,attn=2")).intervals())
                .containsExactly(java.util.Map.entry("mlp", 4), java.util.Map.entry("attn", 2));
    }

    @Test
    void everyFormInTheOneLineListIsInTheGrammar() {
        for (String form : CachePolicies.forms().split(", ")) {
            String name = form.contains(":") ? form.substring(0, form.indexOf(':') + 1) : form;
            assertThat(CachePolicies.grammar()).as(form).contains(name);
        }
    }

    @ParameterizedTest(name = "\"{0}\" -> {1}")
    @CsvSource(delimiter = '|', value = {
        "''|expected a policy but found nothing",
        "fora|fora interval N is missing (usage: fora:N)",
        "fora:|fora interval N is missing",
        "fora:0|fora interval N must be >= 1, got 0",
        "fora:-1|must be a positive integer, got \"-1\"",
        "fora:x|must be a positive integer, got \"x\"",
        "fora:03|without leading zeros",
        "fora:99999999999|too large",
        "fora:3,|fora has an empty argument (usage: fora:N)",
        "mask:|mask BITS is missing (usage: mask:BITS)",
        "schedule:tuned.json|names a file, which this parser does not open",
        "mask:1021|mask character 3 is",
        "mask:0111|the mask's first step must be 1",
        "mask:0|the mask's first step must be 1",
        "warmup:2|warmup inner spec is missing (usage: warmup:K,spec)",
        "warmup:0,fora:3|warmup step count K must be >= 1",
        "warmup:2,|expected a policy but found nothing",
        "cooldown:a,fora:3|cooldown step count K must be a positive integer",
        "FORA:3|unknown policy \"FORA\"",
        "fastercache:0.1|unknown policy \"fastercache\"",
        "taylorseer:5,0|taylorseer order must be >= 1",
        "taylorseer:5,2,1|taylorseer takes at most 2 argument(s), got 3",
        "taylorseer:5,|taylorseer has an empty argument",
        "hicache:5,2,1|strictly between 0 and 1",
        "hicache:5,2,0|strictly between 0 and 1",
        "hicache:5,2,x|hicache contraction SIGMA must be a decimal number, got \"x\"",
        "fbcache:|fbcache threshold T is missing (usage: fbcache:T)",
        "fbcache:-0.1|fbcache threshold T must be >= 0",
        "fbcache:NaN|must be a decimal number",
        "fbcache:1e999|out of range",
        "fbcache:0.1,2|fbcache takes at most 1 argument(s), got 2",
        "teacache:abc|teacache threshold T must be a decimal number",
        "teacache:0.1,1,z|teacache coefficient C1 must be a decimal number",
        "magcache:0.1|magcache K (most steps skipped in a row) is missing (usage: magcache:T,K)",
        "magcache:0.1,0|magcache K (most steps skipped in a row) must be >= 1",
        "deltadit:2|deltadit cached block count C is missing (usage: deltadit:N,C[,B])",
        "deltadit:2,0|deltadit cached block count C must be >= 1",
        "deltadit:2,3,-1|deltadit boundary step B must be a positive integer",
        "pab:|pab BRANCH=N is missing (usage: pab:BRANCH=N[,...])",
        "pab:attn|pab needs BRANCH=N pairs",
        "pab:attn=0|pab interval of attn must be >= 1",
        "pab:Attn=2|must be lower-case letters",
        "pab:attn=2,attn=3|pab names branch attn twice"})
    void badSpecsAreRejectedWithWhatIsWrongAndTheGrammar(String spec, String problem) {
        assertThatThrownBy(() -> CachePolicies.parse(spec))
                .isInstanceOf(PolicySpecException.class)
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("\"" + spec + "\"")
                .hasMessageContaining(problem)
                .hasMessageContaining("Grammar:")
                .hasMessageContaining("warmup:K,spec");
    }

    @Test
    void nullSpecIsRejected() {
        assertThatThrownBy(() -> CachePolicies.parse(null)).isInstanceOf(PolicySpecException.class)
                .hasMessageContaining("null");
    }

    @Test
    void customPoliciesHaveNoSpec() {
        CachePolicy custom = info -> ctx -> Decision.COMPUTE;
        assertThat(custom.spec()).isEmpty();
        assertThatThrownBy(() -> CachePolicies.toSpec(custom)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("no spec string");
        assertThat(WarmupCooldown.warmup(2, custom).spec()).isEmpty();
    }

    @Test
    void maskLengthMustEqualTheStepCountWhenTheGenerationStarts() {
        CachePolicy mask = CachePolicies.parse("mask:1101");
        assertThat(mask.newDecider(info(4))).isNotNull();
        assertThatThrownBy(() -> mask.newDecider(info(50)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("4 entries")
                .hasMessageContaining("50 steps");
        assertThatThrownBy(() -> CachePolicies.parse("warmup:1,mask:11").newDecider(info(3)))
                .hasMessageContaining("2 entries");
    }

    @Test
    void maskDecidesPerStep() {
        CacheDecider d = CachePolicies.parse("mask:1011").newDecider(info(4));
        StringBuilder kinds = new StringBuilder();
        for (int step = 0; step < 4; step++) {
            kinds.append(Contexts.ask(d, step, 4, 1, MLP).kind().name().charAt(0));
        }
        assertThat(kinds).hasToString("CRCC");
    }

    @Test
    void warmupAndCooldownForceComputeAtTheEnds() {
        int k = 12;
        CacheDecider d = CachePolicies.parse("warmup:2,cooldown:3,fora:100").newDecider(info(k));
        StringBuilder kinds = new StringBuilder();
        for (int step = 0; step < k; step++) {
            kinds.append(Contexts.ask(d, step, k, 0, ATTN).kind().name().charAt(0));
        }
        // fora:100 alone computes only step 0 here
        assertThat(kinds).hasToString("CCRRRRRRRCCC");
    }

    @Test
    void decoratorForwardsHistoryMeasurementsAndGuidanceHalves() {
        CachePolicy adaptive = new CachePolicy() {
            @Override
            public CacheDecider newDecider(GenerationInfo info) {
                return ctx -> Decision.COMPUTE;
            }

            @Override
            public Set<Measurement> measurements(GenerationInfo info) {
                return Set.of(Measurement.residualChange(0));
            }

            @Override
            public int historyLength() {
                return 3;
            }

            @Override
            public boolean separateGuidanceHalves() {
                return true;
            }
        };
        WarmupCooldown w = WarmupCooldown.cooldown(2, adaptive);
        assertThat(w.measurements(null)).containsExactly(Measurement.residualChange(0));
        assertThat(w.historyLength()).isEqualTo(3);
        assertThat(w.separateGuidanceHalves()).isTrue();
        assertThat(NoCache.INSTANCE.historyLength()).isZero();
        assertThat(NoCache.INSTANCE.separateGuidanceHalves()).isFalse();
    }

    @Test
    void aMaskMustComputeItsFirstStep() {
        assertThatThrownBy(() -> StepMaskPolicy.of("0111")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("first step must be 1");
        assertThatThrownBy(() -> new StepMaskPolicy(new boolean[0])).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("at least one step");
    }

    @Test
    void nestingIsBoundedWithoutOverflowingTheStack() {
        String sixteen = "warmup:1,".repeat(CachePolicies.MAX_NESTING) + "fora:3";
        assertThat(CachePolicies.parse(sixteen).spec()).contains(sixteen);
        assertThatThrownBy(() -> CachePolicies.parse("warmup:1,".repeat(CachePolicies.MAX_NESTING + 1) + "fora:3"))
                .isInstanceOf(PolicySpecException.class).hasMessageContaining("nest more than 16 deep");
        // deep enough to overflow the stack of a parser that recursed without a bound
        assertThatThrownBy(() -> CachePolicies.parse("warmup:1,".repeat(5000) + "none"))
                .isInstanceOf(PolicySpecException.class).hasMessageContaining("nest more than 16 deep");
    }

    @Test
    void splitKeepsDecoratorCommasInsideTheirSpec() {
        assertThat(CachePolicies.split("fora:2,warmup:2,fora:3")).containsExactly("fora:2", "warmup:2,fora:3");
        assertThat(CachePolicies.split("fora:2,fora:3")).containsExactly("fora:2", "fora:3");
        assertThat(CachePolicies.split("fora:2,warmup:2,fora:3,cooldown:1,warmup:2,fora:5,mask:101"))
                .containsExactly("fora:2", "warmup:2,fora:3", "cooldown:1,warmup:2,fora:5", "mask:101");
        assertThat(CachePolicies.split(" none , fora:3 ")).containsExactly("none", "fora:3");
        // the parts are not parsed: every one parses to itself
        for (String spec : CachePolicies.split("warmup:2,cooldown:3,fora:5,none")) {
            assertThat(CachePolicies.parse(spec).spec()).contains(spec);
        }
    }

    @Test
    void splitKeepsTheArgumentsOfAPolicyWithIt() {
        assertThat(CachePolicies.split("fora:2,taylorseer:5,2,hicache:6,2,0.5,fbcache:0.1"))
                .containsExactly("fora:2", "taylorseer:5,2", "hicache:6,2,0.5", "fbcache:0.1");
        assertThat(CachePolicies.split("teacache:0.3,-0.01,1.2,magcache:0.06,3,pab:attn=2,mlp=4,deltadit:2,3,10"))
                .containsExactly("teacache:0.3,-0.01,1.2", "magcache:0.06,3", "pab:attn=2,mlp=4", "deltadit:2,3,10");
        assertThat(CachePolicies.split("warmup:2,taylorseer:5,2,cooldown:1,pab:attn=2,mlp=3,none"))
                .containsExactly("warmup:2,taylorseer:5,2", "cooldown:1,pab:attn=2,mlp=3", "none");
        for (String spec : CachePolicies.split("warmup:2,taylorseer:5,2,magcache:0.1,2,pab:attn=2,mlp=3")) {
            assertThat(CachePolicies.parse(spec).spec()).contains(spec);
        }
    }

    @Test
    void splitLeavesADanglingDecoratorAsAPartForParseToReject() {
        List<String> parts = CachePolicies.split("fora:2,warmup:2");
        assertThat(parts).containsExactly("fora:2", "warmup:2");
        assertThatThrownBy(() -> CachePolicies.parse(parts.get(1))).isInstanceOf(PolicySpecException.class)
                .hasMessageContaining("warmup inner spec is missing (usage: warmup:K,spec)");
        assertThat(CachePolicies.split("warmup:2")).containsExactly("warmup:2");
    }
}
