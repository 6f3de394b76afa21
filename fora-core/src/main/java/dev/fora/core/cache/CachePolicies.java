package dev.fora.core.cache;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Parses cache policy spec strings, the one-line form of a policy used on command lines and
 * in reports.
 *
 * <pre>
 * spec     := "none"                        compute everything ({@link NoCache})
 *           | "fora:" N                     FORA static interval N &gt;= 1 ({@link StaticIntervalPolicy})
 *           | "taylorseer:" N ["," O]       FORA schedule, Taylor forecasts of order O &gt;= 1, default 1 ({@link TaylorSeerPolicy})
 *           | "hicache:" N ["," O ["," S]]  FORA schedule, scaled-Hermite forecasts of order O (default 2),
 *                                           contraction 0 &lt; S &lt; 1 (default 0.5) ({@link HiCachePolicy})
 *           | "fbcache:" T                  First-Block-Cache, threshold T &gt;= 0 ({@link FirstBlockCachePolicy})
 *           | "teacache:" T {"," C}         TeaCache, threshold T &gt;= 0, rescaling polynomial C0, C1, ... ({@link TeaCachePolicy})
 *           | "magcache:" T "," K           MagCache-style, error threshold T &gt;= 0, at most K &gt;= 1 skips in a row ({@link MagCachePolicy})
 *           | "deltadit:" N "," C ["," B]   Delta-DiT: full steps every N, else skip C blocks (rear before step B, front from B on) ({@link DeltaDiTPolicy})
 *           | "pab:" NAME "=" N {"," NAME "=" N}   per-branch FORA intervals ({@link BranchIntervalPolicy})
 *           | "mask:" BITS                  one 0/1 per step, first char = first step ({@link StepMaskPolicy})
 *           | "warmup:" K "," spec          compute the first K &gt;= 1 steps, then spec ({@link WarmupCooldown})
 *           | "cooldown:" K "," spec        compute the last K &gt;= 1 steps, before that spec
 *           | "schedule:" FILE              a searched schedule file ({@link SchedulePolicy}); read by the CLI, refused here
 * </pre>
 * Examples: {@code fora:3}, {@code taylorseer:5,2}, {@code hicache:6}, {@code fbcache:0.12},
 * {@code teacache:0.3,0.01,1.4}, {@code magcache:0.06,3}, {@code deltadit:2,3},
 * {@code pab:attn=2,mlp=4}, {@code mask:1101101}, {@code warmup:2,fora:3},
 * {@code warmup:2,cooldown:3,fora:5}. Numbers T, C and S are decimals ({@code 0.1},
 * {@code 1e-3}); the others are integers. Decorators nest to the right, at most
 * {@link #MAX_NESTING} deep. A mask must start with 1 (the first step computes); its length is
 * checked against the number of steps when a generation starts, and a pab branch name against
 * the model's block layout. {@link CachePolicy#spec()} of a parsed policy gives the spec back
 * (numbers in their shortest form: {@code fbcache:0.10} gives {@code fbcache:0.1}), and
 * parsing that gives the same policy. Every built-in decides per image and applies to any
 * {@link dev.fora.core.model.BlockLayout}.
 */
public final class CachePolicies {

    /** The spec forms on one line, for usage messages. */
    public static final String FORMS = "none, fora:N, taylorseer:N[,ORDER], hicache:N[,ORDER[,SIGMA]], fbcache:T, "
            + "teacache:T[,C0,C1,...], magcache:T,K, deltadit:N,C[,B], pab:BRANCH=N[,BRANCH=N...], mask:BITS, warmup:K,SPEC, "
            + "cooldown:K,SPEC, schedule:FILE";

    /** How deep warmup:/cooldown: may nest. */
    public static final int MAX_NESTING = 16;

    /** The grammar, as shown in error messages. */
    public static final String GRAMMAR = """
            Grammar:
              spec := none
                    | fora:N                  (N >= 1, FORA static interval)
                    | taylorseer:N[,O]        (FORA schedule, Taylor forecasts of order O >= 1, default 1)
                    | hicache:N[,O[,S]]       (FORA schedule, scaled-Hermite forecasts, order O default 2, 0 < S < 1 default 0.5)
                    | fbcache:T               (First-Block-Cache: skip blocks 1.. while block 0's residual change sum < T)
                    | teacache:T[,C0,C1,...]  (TeaCache: skip the step while the rescaled input change sum < T)
                    | magcache:T,K            (MagCache-style: skip while the magnitude-ratio error sum < T, K >= 1 in a row)
                    | deltadit:N,C[,B]        (Delta-DiT: full every N, else skip C rear blocks before step B, front after)
                    | pab:BRANCH=N[,...]      (per-branch FORA intervals, e.g. pab:attn=2,mlp=4)
                    | mask:BITS               (one 0 or 1 per sampler step, first = noisiest, must be 1)
                    | warmup:K,spec           (K >= 1 first steps computed, then spec)
                    | cooldown:K,spec         (K >= 1 last steps computed, before that spec)
                    | schedule:FILE           (a searched per-block schedule file from fora tune; the CLI's --policy reads it)
              T, C and S are decimals (0.1, 1e-3); N, O, K, C of deltadit and B are integers
              examples: none, fora:3, taylorseer:5,2, hicache:6, fbcache:0.12, teacache:0.3, magcache:0.06,3,
                        deltadit:2,3, pab:attn=2,mlp=4, mask:1110110, warmup:2,fora:3, warmup:2,cooldown:3,fora:5""";

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
     * Splits a comma-separated list of specs. A new spec starts at a part that names a policy
     * ({@code none}, or {@code name:...}); the other parts are further arguments of the spec
     * before them ({@code taylorseer:5,2}, {@code pab:attn=2,mlp=4}). A comma after
     * {@code warmup:K} or {@code cooldown:K} belongs to that spec, so
     * {@code fora:2,warmup:2,fora:3,taylorseer:5,2} is {@code fora:2}, {@code warmup:2,fora:3}
     * and {@code taylorseer:5,2}. The parts are not parsed; a dangling decorator stays a part of
     * its own, for {@link #parse} to reject.
     */
    public static List<String> split(String list) {
        List<String> specs = new ArrayList<>();
        StringBuilder current = null;
        boolean awaitingInner = false;
        for (String part : list.split(",", -1)) {
            String p = part.strip();
            boolean starts = p.equals("none") || POLICY_START.matcher(p).lookingAt();
            if (current == null || (starts && !awaitingInner)) {
                if (current != null) {
                    specs.add(current.toString());
                }
                current = new StringBuilder(p);
            } else {
                current.append(',').append(p);
            }
            awaitingInner = DECORATOR.matcher(p).matches();
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

    /** The start of a spec: a policy name and a colon. */
    private static final Pattern POLICY_START = Pattern.compile("[A-Za-z][A-Za-z0-9_-]*:");

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
            case "taylorseer": {
                String[] a = args(whole, name, rest, 1, 2, "taylorseer:N or taylorseer:N,ORDER");
                int n = positive(whole, "taylorseer interval N", a[0]);
                return a.length == 1 ? new TaylorSeerPolicy(n) : new TaylorSeerPolicy(n, positive(whole, "taylorseer order", a[1]));
            }
            case "hicache": {
                String[] a = args(whole, name, rest, 1, 3, "hicache:N, hicache:N,ORDER or hicache:N,ORDER,SIGMA");
                int n = positive(whole, "hicache interval N", a[0]);
                if (a.length == 1) {
                    return HiCachePolicy.of(n);
                }
                int order = positive(whole, "hicache order", a[1]);
                if (a.length == 2) {
                    return HiCachePolicy.of(n, order);
                }
                return new HiCachePolicy(n, order, number(whole, "hicache contraction SIGMA", a[2]));
            }
            case "fbcache": {
                String[] a = args(whole, name, rest, 1, 1, "fbcache:T");
                return new FirstBlockCachePolicy(threshold(whole, "fbcache threshold T", a[0]));
            }
            case "teacache": {
                String[] a = args(whole, name, rest, 1, Integer.MAX_VALUE, "teacache:T or teacache:T,C0,C1,...");
                double t = threshold(whole, "teacache threshold T", a[0]);
                double[] c = new double[a.length - 1];
                for (int i = 1; i < a.length; i++) {
                    c[i - 1] = number(whole, "teacache coefficient C" + (i - 1), a[i]);
                }
                return new TeaCachePolicy(t, c);
            }
            case "magcache": {
                String[] a = args(whole, name, rest, 2, 2, "magcache:T,K");
                return new MagCachePolicy(threshold(whole, "magcache threshold T", a[0]),
                        positive(whole, "magcache K (most steps skipped in a row)", a[1]));
            }
            case "deltadit": {
                String[] a = args(whole, name, rest, 2, 3, "deltadit:N,C or deltadit:N,C,B");
                int n = positive(whole, "deltadit interval N", a[0]);
                int c = positive(whole, "deltadit cached block count C", a[1]);
                return new DeltaDiTPolicy(n, c, a.length == 2 ? java.util.OptionalInt.empty()
                        : java.util.OptionalInt.of(nonNegativeInt(whole, "deltadit boundary step B", a[2])));
            }
            case "pab": {
                String[] a = args(whole, name, rest, 1, Integer.MAX_VALUE, "pab:attn=2,mlp=4");
                java.util.Map<String, Integer> intervals = new java.util.LinkedHashMap<>();
                for (String kv : a) {
                    int eq = kv.indexOf('=');
                    if (eq < 0) {
                        throw new PolicySpecException(whole, "pab needs BRANCH=N pairs like pab:attn=2,mlp=4, got \"" + kv + "\"");
                    }
                    String branch = kv.substring(0, eq);
                    if (!branch.matches("[a-z][a-z0-9_]*")) {
                        throw new PolicySpecException(whole, "pab branch name \"" + branch + "\" must be lower-case letters, digits"
                                + " and _");
                    }
                    int n = positive(whole, "pab interval of " + branch, kv.substring(eq + 1));
                    if (intervals.put(branch, n) != null) {
                        throw new PolicySpecException(whole, "pab names branch " + branch + " twice");
                    }
                }
                return new BranchIntervalPolicy(intervals);
            }
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
            case "schedule":
                throw new PolicySpecException(whole, "schedule:FILE names a file, which this parser does not open: the CLI's"
                        + " --policy reads it, and code passes a CacheSchedule to new SchedulePolicy(schedule)");
            default:
                throw new PolicySpecException(whole, "unknown policy \"" + name + "\" (expected one of: " + FORMS + ")");
        }
    }

    /** The comma-separated arguments of a policy, between {@code min} and {@code max} of them. */
    private static String[] args(String whole, String name, String rest, int min, int max, String forms) {
        String[] a = rest.split(",", -1);
        for (int i = 0; i < a.length; i++) {
            a[i] = a[i].strip();
        }
        if (a.length < min || a.length > max) {
            throw new PolicySpecException(whole, name + " takes " + (min == max ? String.valueOf(min) : max == Integer.MAX_VALUE
                    ? "at least " + min : min + " to " + max) + " argument(s), got " + a.length + " (" + forms + ")");
        }
        for (String x : a) {
            if (x.isEmpty()) {
                throw new PolicySpecException(whole, name + " has an empty argument (" + forms + ")");
            }
        }
        return a;
    }

    private static double number(String whole, String what, String text) {
        try {
            return SpecNumbers.parse(what, text);
        } catch (IllegalArgumentException e) {
            throw new PolicySpecException(whole, e.getMessage());
        }
    }

    private static double threshold(String whole, String what, String text) {
        try {
            return SpecNumbers.nonNegative(what, text);
        } catch (IllegalArgumentException e) {
            throw new PolicySpecException(whole, e.getMessage());
        }
    }

    private static int nonNegativeInt(String whole, String what, String digits) {
        return digits.equals("0") ? 0 : positive(whole, what, digits);
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
