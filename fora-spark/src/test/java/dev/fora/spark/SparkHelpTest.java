package dev.fora.spark;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fora.core.cache.CachePolicies;
import org.junit.jupiter.api.Test;

/** The job's help lists the policy specs from the core's registry, before the exit codes. */
class SparkHelpTest {

    @Test
    void helpListsThePolicySpecsOfTheRegistry() {
        String help = SparkGenerate.commandLine().getUsageMessage();
        assertThat(help).contains("Policy specs: " + CachePolicies.forms());
        assertThat(help.indexOf("Policy specs: ")).isLessThan(help.indexOf("Exit codes: "));
    }
}
