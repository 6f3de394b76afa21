package dev.fora.examples.cli;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.NoCache;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Parses {@code --policy} values into cache policies, with one-line errors. */
final class Policies {

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
            throw new CliException(ExitCodes.USAGE, (nl < 0 ? msg : msg.substring(0, nl)) + " (specs: " + CachePolicies.FORMS
                    + ")", e);
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
}
