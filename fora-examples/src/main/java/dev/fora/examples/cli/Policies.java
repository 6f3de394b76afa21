package dev.fora.examples.cli;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.NoCache;
import dev.fora.core.cache.PolicyType;
import dev.fora.core.calibration.Calibration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.UsageMessageSpec;

/**
 * Parses {@code --policy} values into cache policies, with one-line errors, and describes the
 * policy specs in the commands' help, from the core's registry of policy types (so a type a
 * program registers before running the command line is accepted and listed).
 */
public final class Policies {

    /** The help section listing the policy specs. */
    static final String HELP_SECTION = "policySpecs";

    private Policies() {
    }

    /** One spec ({@code schedule:FILE} read by {@link ScheduleFiles}), or a usage error showing the first line of the grammar error. */
    static CachePolicy parse(String spec) {
        if (ScheduleFiles.isScheduleSpec(spec)) {
            try {
                return ScheduleFiles.parseSpec(spec);
            } catch (IllegalArgumentException e) {
                throw new CliException(ExitCodes.USAGE, e.getMessage(), e);
            }
        }
        try {
            return CachePolicies.parse(spec);
        } catch (IllegalArgumentException e) {
            String msg = e.getMessage() == null ? "invalid policy " + spec : e.getMessage();
            int nl = msg.indexOf('\n');
            String line = nl < 0 ? msg : msg.substring(0, nl);
            // argument errors carry their usage line, unknown names the list of forms
            boolean guided = line.contains("(usage: ") || line.contains("(expected one of: ");
            throw new CliException(ExitCodes.USAGE, guided ? line : line + " (specs: " + CachePolicies.forms() + ")", e);
        }
    }

    /**
     * {@code none} (no cache) first, then the policies of repeated and comma-separated
     * {@code --policy} values ({@link CachePolicies#split}), keyed by spec, duplicates dropped:
     * what {@code compare} and {@code bench} run.
     */
    static Map<String, CachePolicy> noneAnd(List<String> values) {
        Map<String, CachePolicy> out = new LinkedHashMap<>();
        out.put("none", NoCache.INSTANCE);
        for (String v : values) {
            for (String s : CachePolicies.split(v)) {
                out.putIfAbsent(s, parse(s));
            }
        }
        return out;
    }

    /**
     * Adds the list of policy specs, one line per registered type, to the help of every
     * subcommand of {@code root} whose {@code --policy} takes a spec.
     */
    public static void describeIn(CommandLine root) {
        for (CommandLine command : root.getSubcommands().values()) {
            OptionSpec option = command.getCommandSpec().findOption("--policy");
            if (option != null && option.paramLabel().equals("SPEC")) {
                List<String> keys = new ArrayList<>(command.getHelpSectionKeys());
                keys.add(keys.indexOf(UsageMessageSpec.SECTION_KEY_FOOTER_HEADING), HELP_SECTION);
                command.setHelpSectionKeys(keys);
                command.getHelpSectionMap().put(HELP_SECTION, help -> help());
            }
        }
    }

    /** The policy specs section of the help. */
    static String help() {
        List<PolicyType> types = CachePolicies.types();
        int width = types.stream().mapToInt(t -> t.usage().length()).max().orElse(0) + 2;
        String nl = System.lineSeparator();
        StringBuilder sb = new StringBuilder(nl).append("Policy specs (whitespace around ':', ',' and '=' is ignored):").append(nl);
        for (PolicyType t : types) {
            sb.append("  ").append(t.usage()).append(" ".repeat(width - t.usage().length())).append(t.description()).append(nl);
        }
        return sb.toString();
    }

    /** The names {@code calibrate --policy} takes, for its help. */
    static final class Calibratable implements Iterable<String> {
        @Override
        public Iterator<String> iterator() {
            return Calibration.policies().iterator();
        }
    }
}
