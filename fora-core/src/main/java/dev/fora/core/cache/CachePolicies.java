package dev.fora.core.cache;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Parses cache policy spec strings, the one-line form of a policy used on command lines and
 * in reports, through a registry of {@link PolicyType}s: one per built-in, and any registered
 * with {@link #register}. The grammar ({@link #grammar()}), the one-line list of forms
 * ({@link #forms()}), the {@code fora} command's help and calibration read the registry.
 *
 * A spec is a policy name, a colon and its comma-separated arguments ({@code taylorseer:5,2});
 * {@link #grammar()} lists every registered form with what it does (the built-ins:
 * {@link NoCache}, {@link StaticIntervalPolicy}, {@link TaylorSeerPolicy}, {@link HiCachePolicy},
 * {@link FirstBlockCachePolicy}, {@link TeaCachePolicy}, {@link MagCachePolicy},
 * {@link DeltaDiTPolicy}, {@link BranchIntervalPolicy}, {@link StepMaskPolicy} and the
 * decorators {@code warmup:K,spec} and {@code cooldown:K,spec} of {@link WarmupCooldown}).
 * Examples: {@code fora:3}, {@code taylorseer:5,2}, {@code hicache:6}, {@code fbcache:0.12},
 * {@code teacache:0.3,0.01,1.4}, {@code magcache:0.06,3}, {@code deltadit:2,3},
 * {@code pab:attn=2,mlp=4}, {@code mask:1101101}, {@code warmup:2,fora:3},
 * {@code warmup:2,cooldown:3,fora:5}. Numbers T, C and S are decimals ({@code 0.1},
 * {@code 1e-3}); the others are integers. Decorators nest to the right, at most
 * {@link #MAX_NESTING} deep. A mask must start with 1 (the first step computes); its length is
 * checked against the number of steps when a generation starts, and a pab branch name against
 * the model's block layout. Whitespace around a spec and around its separators ({@code :},
 * {@code ,} and {@code =}) is ignored ({@code " warmup: 2, fora:3"} is {@code warmup:2,fora:3});
 * whitespace inside a name or a number is an error. {@link CachePolicy#spec()} of a parsed policy gives the spec back
 * (numbers in their shortest form: {@code fbcache:0.10} gives {@code fbcache:0.1}), and
 * parsing that gives the same policy. Every built-in decides per image and applies to any
 * {@link dev.fora.core.model.BlockLayout}.
 */
public final class CachePolicies {

    /** How deep decorators ({@code warmup:}, {@code cooldown:}) may nest. */
    public static final int MAX_NESTING = 16;

    private static final Map<String, PolicyType> TYPES = new LinkedHashMap<>();

    static {
        for (PolicyType t : BuiltInPolicyTypes.ALL) {
            TYPES.put(t.name(), t);
        }
    }

    /** Whitespace next to a separator, and the separator. */
    private static final Pattern SEPARATOR = Pattern.compile("\\s*([:,=])\\s*");

    /** The start of a spec: a policy name and a colon. */
    private static final Pattern POLICY_START = Pattern.compile("([a-z][a-z0-9_-]*):");

    private CachePolicies() {
    }

    /**
     * Registers a policy type: from now on every spec string may name it.
     *
     * @throws IllegalArgumentException if a type of that name is registered already
     */
    public static void register(PolicyType type) {
        synchronized (TYPES) {
            if (TYPES.containsKey(type.name())) {
                throw new IllegalArgumentException("a policy type named \"" + type.name() + "\" is registered already ("
                        + TYPES.get(type.name()).usage() + ")");
            }
            TYPES.put(type.name(), type);
        }
    }

    /** Every registered policy type: the built-ins in grammar order, then the registered ones in order. */
    public static List<PolicyType> types() {
        synchronized (TYPES) {
            return List.copyOf(TYPES.values());
        }
    }

    /** The policy type of that name, if registered. */
    public static Optional<PolicyType> type(String name) {
        synchronized (TYPES) {
            return Optional.ofNullable(TYPES.get(name));
        }
    }

    /** The spec forms on one line, for usage messages ({@code none, fora:N, taylorseer:N[,O], ...}). */
    public static String forms() {
        return types().stream().map(PolicyType::usage).collect(Collectors.joining(", "));
    }

    /** The grammar, one line per policy type with its description, as error messages show it. */
    public static String grammar() {
        List<PolicyType> types = types();
        int width = types.stream().mapToInt(t -> t.usage().length()).max().orElse(0) + 2;
        StringBuilder sb = new StringBuilder("Grammar:\n");
        for (int i = 0; i < types.size(); i++) {
            PolicyType t = types.get(i);
            sb.append(i == 0 ? "  spec := " : "        | ").append(t.usage())
                    .append(" ".repeat(width - t.usage().length())).append(t.description()).append('\n');
        }
        sb.append("  whitespace around ':', ',' and '=' is ignored; decorators nest at most ").append(MAX_NESTING)
                .append(" deep\n");
        sb.append("  examples: none, fora:3, taylorseer:5,2, hicache:6, fbcache:0.12, teacache:0.3, magcache:0.06,3,\n"
                + "            deltadit:2,3, pab:attn=2,mlp=4, mask:1110110, warmup:2,fora:3, warmup:2,cooldown:3,fora:5");
        return sb.toString();
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
        return parse(spec, normalize(spec, spec), 0);
    }

    /**
     * Splits a comma-separated list of specs. A new spec starts at a part that names a policy
     * ({@code none}, or {@code name:...}); the other parts are further arguments of the spec
     * before them ({@code taylorseer:5,2}, {@code pab:attn=2,mlp=4}). A comma after a
     * decorator's arguments ({@code warmup:K}, {@code cooldown:K}) belongs to that spec, so
     * {@code fora:2,warmup:2,fora:3,taylorseer:5,2} is {@code fora:2}, {@code warmup:2,fora:3}
     * and {@code taylorseer:5,2}. Whitespace around separators is dropped as {@link #parse} drops
     * it. The parts are not parsed; a dangling decorator stays a part of its own, for
     * {@link #parse} to reject.
     */
    public static List<String> split(String list) {
        List<String> specs = new ArrayList<>();
        StringBuilder current = null;
        boolean awaitingInner = false;
        for (String p : SEPARATOR.matcher(list.strip()).replaceAll("$1").split(",", -1)) {
            Matcher start = POLICY_START.matcher(p);
            PolicyType type = start.lookingAt() ? type(start.group(1)).orElse(null) : type(p).orElse(null);
            boolean starts = type != null || start.lookingAt();
            if (current == null || (starts && !awaitingInner)) {
                if (current != null) {
                    specs.add(current.toString());
                }
                current = new StringBuilder(p);
            } else {
                current.append(',').append(p);
            }
            if (starts) {
                awaitingInner = type != null && type.isDecorator();
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
                "policy " + policy + " has no spec string; only built-in and registered policies do"));
    }

    /** The spec without whitespace around separators and ends; whitespace left inside a token is an error. */
    private static String normalize(String whole, String spec) {
        String s = SEPARATOR.matcher(spec.strip()).replaceAll("$1");
        for (String token : s.split("[:,=]")) {
            if (token.chars().anyMatch(Character::isWhitespace)) {
                throw new PolicySpecException(whole, "whitespace inside \"" + SpecNumbers.echo(token) + "\"; a spec may have"
                        + " whitespace only around ':', ',' and '='");
            }
        }
        return s;
    }

    /** Parses {@code s} (normalized), a part of {@code whole} nested {@code depth} decorators deep. */
    static CachePolicy parse(String whole, String s, int depth) {
        if (s.isEmpty()) {
            throw new PolicySpecException(whole, "expected a policy but found nothing");
        }
        int colon = s.indexOf(':');
        String name = colon < 0 ? s : s.substring(0, colon);
        PolicyType type = type(name).orElseThrow(() -> new PolicySpecException(whole, "unknown policy \""
                + SpecNumbers.echo(name) + "\" (expected one of: " + forms() + ")"));
        try {
            return type.parse(new SpecArguments(whole, type, colon < 0 ? "" : s.substring(colon + 1), depth));
        } catch (PolicySpecException e) {
            throw e;
        } catch (IllegalArgumentException e) {
            // the policy's own checks (a constructor's), with the usage line the parser's errors carry
            throw new PolicySpecException(whole, e.getMessage() + " (usage: " + type.usage() + ")");
        }
    }
}
