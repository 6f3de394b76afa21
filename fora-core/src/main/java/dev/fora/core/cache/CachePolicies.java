package dev.fora.core.cache;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Parses cache policy spec strings, the one-line form of a policy used on command lines and
 * in reports.
 *
 * <pre>
 * spec     := "none"                      compute everything ({@link NoCache})
 *           | "fora:" N                   FORA static interval N &gt;= 1 ({@link StaticIntervalPolicy})
 *           | "taylorseer:" N             FORA schedule, cached steps forecast to first order ({@link TaylorSeerPolicy})
 *           | "mask:" BITS                one 0/1 per step, first char = first step ({@link StepMaskPolicy})
 *           | "warmup:" K "," spec        compute the first K &gt;= 1 steps, then spec ({@link WarmupCooldown})
 *           | "cooldown:" K "," spec      compute the last K &gt;= 1 steps, before that spec
 * </pre>
 * Examples: {@code fora:3}, {@code mask:1101101}, {@code warmup:2,fora:3},
 * {@code warmup:2,cooldown:3,fora:5}. Decorators nest to the right, at most
 * {@link #MAX_NESTING} deep. A mask must start with 1 (the first step computes); its length is
 * checked against the number of steps when a generation starts. {@link CachePolicy#spec()} of
 * a parsed policy returns the same string. Every built-in applies to every block and branch of
 * any {@link dev.fora.core.model.BlockLayout}.
 */
public final class CachePolicies {

    /** The spec forms on one line, for usage messages. */
    public static final String FORMS = "none, fora:N, taylorseer:N, mask:BITS, warmup:K,SPEC, cooldown:K,SPEC";

    /** How deep warmup:/cooldown: may nest. */
    public static final int MAX_NESTING = 16;

    /** The grammar, as shown in error messages. */
    public static final String GRAMMAR = """
            Grammar:
              spec := none
                    | fora:N              (N >= 1, FORA static interval)
                    | taylorseer:N        (N >= 1, FORA schedule with first-order forecasts)
                    | mask:BITS           (one 0 or 1 per sampler step, first = noisiest, must be 1)
                    | warmup:K,spec       (K >= 1 first steps computed, then spec)
                    | cooldown:K,spec     (K >= 1 last steps computed, before that spec)
              examples: none, fora:3, mask:1110110, warmup:2,fora:3, warmup:2,cooldown:3,fora:5""";

    private CachePolicies() {
    }

    /**
     * Parses a spec string.
     *
     * @throws PolicySpecException (an {@link IllegalArgumentException}) saying what is wrong
     */
    public static CachePolicy parse(String spec) {
        if (spec == null) {
            throw new PolicySpecException("null", "the spec is null");
        }
        try {
            return parse(spec, spec.strip(), 0);
        } catch (PolicySpecException e) {
            throw e;
        } catch (IllegalArgumentException e) {
            throw new PolicySpecException(spec, e.getMessage());
        }
    }

    /**
     * Splits a comma-separated list of specs. A comma after {@code warmup:K} or
     * {@code cooldown:K} belongs to that spec, so {@code fora:2,warmup:2,fora:3} is
     * {@code fora:2} and {@code warmup:2,fora:3}. The parts are not parsed; a dangling
     * decorator stays a part of its own, for {@link #parse} to reject.
     */
    public static List<String> split(String list) {
        List<String> specs = new ArrayList<>();
        StringBuilder current = null;
        for (String part : list.split(",", -1)) {
            String p = part.strip();
            if (current == null) {
                current = new StringBuilder(p);
            } else {
                current.append(',').append(p);
            }
            if (!DECORATOR.matcher(p).matches()) {
                specs.add(current.toString());
                current = null;
            }
        }
        if (current != null) {
            specs.add(current.toString());
        }
        return specs;
    }

    /**
     * The spec string of a policy.
     *
     * @throws IllegalArgumentException if the policy has no spec (a custom policy)
     */
    public static String toSpec(CachePolicy policy) {
        return policy.spec().orElseThrow(() -> new IllegalArgumentException(
                "policy " + policy + " has no spec string; only built-in policies do"));
    }

    /** A decorator prefix that takes the next comma-separated part as its inner spec. */
    private static final Pattern DECORATOR = Pattern.compile("(warmup|cooldown):[0-9]+");

    private static CachePolicy parse(String whole, String s, int depth) {
        if (s.isEmpty()) {
            throw new PolicySpecException(whole, "expected a policy but found nothing");
        }
        if (s.equals("none")) {
            return NoCache.INSTANCE;
        }
        int colon = s.indexOf(':');
        if (colon < 0) {
            throw new PolicySpecException(whole, "unknown policy \"" + s + "\" (expected one of: " + FORMS + ")");
        }
        String name = s.substring(0, colon);
        String rest = s.substring(colon + 1);
        switch (name) {
            case "fora":
                return new StaticIntervalPolicy(positive(whole, "fora interval N", rest));
            case "taylorseer":
                return new TaylorSeerPolicy(positive(whole, "taylorseer interval N", rest));
            case "mask":
                if (rest.isEmpty()) {
                    throw new PolicySpecException(whole, "mask needs at least one 0/1 character");
                }
                for (int k = 0; k < rest.length(); k++) {
                    char c = rest.charAt(k);
                    if (c != '0' && c != '1') {
                        throw new PolicySpecException(whole, "mask character " + (k + 1) + " is '" + c + "'; only 0 and 1 are allowed");
                    }
                }
                return StepMaskPolicy.of(rest);
            case "warmup":
            case "cooldown": {
                int comma = rest.indexOf(',');
                if (comma < 0) {
                    throw new PolicySpecException(whole, name + " needs a step count and an inner spec, like " + name + ":2,fora:3");
                }
                int k = positive(whole, name + " step count K", rest.substring(0, comma));
                if (depth == MAX_NESTING) {
                    throw new PolicySpecException(whole, "warmup:/cooldown: nest more than " + MAX_NESTING + " deep");
                }
                CachePolicy inner = parse(whole, rest.substring(comma + 1), depth + 1);
                return name.equals("warmup") ? WarmupCooldown.warmup(k, inner) : WarmupCooldown.cooldown(k, inner);
            }
            default:
                throw new PolicySpecException(whole, "unknown policy \"" + name + "\" (expected one of: " + FORMS + ")");
        }
    }

    private static int positive(String whole, String what, String digits) {
        if (digits.isEmpty()) {
            throw new PolicySpecException(whole, what + " is missing");
        }
        for (int i = 0; i < digits.length(); i++) {
            if (digits.charAt(i) < '0' || digits.charAt(i) > '9') {
                throw new PolicySpecException(whole, what + " must be a positive integer, got \"" + digits + "\"");
            }
        }
        if (digits.length() > 1 && digits.charAt(0) == '0') {
            throw new PolicySpecException(whole, what + " must be written without leading zeros, got \"" + digits + "\"");
        }
        int value;
        try {
            value = Integer.parseInt(digits);
        } catch (NumberFormatException e) {
            throw new PolicySpecException(whole, what + " is too large: " + digits);
        }
        if (value < 1) {
            throw new PolicySpecException(whole, what + " must be >= 1, got " + value);
        }
        return value;
    }
}
