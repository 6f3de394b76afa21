package dev.fora.examples.cli;

import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.NoCache;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/** Parses {@code --policy} values into cache policies, with one-line errors. */
final class Policies {

    /** A decorator prefix that takes the next comma-separated part as its inner spec. */
    private static final Pattern DECORATOR = Pattern.compile("(warmup|cooldown):[0-9]+");

    private Policies() {
    }

    /** One spec, or a usage error showing the first line of the grammar error. */
    static CachePolicy parse(String spec) {
        try {
            return CachePolicies.parse(spec);
        } catch (IllegalArgumentException e) {
            String msg = e.getMessage() == null ? "invalid policy " + spec : e.getMessage();
            int nl = msg.indexOf('\n');
            throw new CliException(ExitCodes.USAGE, (nl < 0 ? msg : msg.substring(0, nl))
                    + " (specs: none, fora:N, taylorseer:N, mask:BITS, warmup:K,SPEC, cooldown:K,SPEC)", e);
        }
    }

    /**
     * Splits repeated and comma-separated {@code --policy} values into specs. A comma after a
     * {@code warmup:K} or {@code cooldown:K} part belongs to that spec, so
     * {@code --policy fora:2,warmup:2,fora:3} is {@code fora:2} and {@code warmup:2,fora:3}.
     */
    static List<String> split(List<String> values) {
        List<String> specs = new ArrayList<>();
        for (String v : values) {
            StringBuilder current = null;
            for (String part : v.split(",", -1)) {
                String p = part.strip();
                if (current == null) {
                    current = new StringBuilder(p);
                } else {
                    current.append(',').append(p);
                }
                if (!endsWithDecorator(current.toString())) {
                    specs.add(current.toString());
                    current = null;
                }
            }
            if (current != null) {
                specs.add(current.toString()); // a dangling decorator: let the parser say what is missing
            }
        }
        return specs;
    }

    private static boolean endsWithDecorator(String spec) {
        String[] parts = spec.split(",", -1);
        return DECORATOR.matcher(parts[parts.length - 1]).matches();
    }

    /**
     * {@code none} (no cache) first, then the policies of repeated and comma-separated
     * {@code --policy} values, keyed by spec: what {@code compare} and {@code bench} run.
     */
    static Map<String, CachePolicy> noneAnd(List<String> values) {
        Map<String, CachePolicy> out = new LinkedHashMap<>();
        out.put("none", NoCache.INSTANCE);
        out.putAll(parseAll(split(values)));
        return out;
    }

    /** Parses specs, dropping duplicates, keeping order. */
    static Map<String, CachePolicy> parseAll(List<String> specs) {
        Map<String, CachePolicy> out = new LinkedHashMap<>();
        for (String s : specs) {
            out.putIfAbsent(s, parse(s));
        }
        return out;
    }
}
