package dev.fora.core.cache;

import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * One kind of cache policy as spec strings name it ({@code fora}, {@code teacache}, ...): its
 * name, usage line, one-line description, parser, how its spec is printed, and, for threshold
 * policies, what calibration tunes. {@link CachePolicies} holds one per built-in; register your
 * own with {@link CachePolicies#register}, after which every spec string (the {@code fora}
 * command's {@code --policy}, {@code GenerationRequest}) accepts it:
 * <pre>{@code
 * final class Every implements CachePolicy {
 *     static final PolicyType TYPE = PolicyType.of("every", "every:N", "compute every N-th step, reuse in between",
 *             a -> new Every(a.positiveInt(0, "interval N")));
 *     ...
 *     public Optional<String> spec() { return Optional.of(TYPE.spec(n)); }     // "every:3"
 * }
 * CachePolicies.register(Every.TYPE);                                           // once, at start-up
 * }</pre>
 */
public final class PolicyType {

    /** Parses the arguments of one spec of this type into a policy. */
    @FunctionalInterface
    public interface Parser {

        /**
         * The policy the arguments name. Read them through {@code arguments}, whose errors name the
         * spec, the argument and the usage line; an {@link IllegalArgumentException} thrown here
         * (e.g. by the policy's constructor) becomes a {@link PolicySpecException} too.
         */
        CachePolicy parse(SpecArguments arguments);
    }

    private static final Pattern NAME = Pattern.compile("[a-z][a-z0-9_-]*");

    private final String name;
    private final String usage;
    private final String description;
    private final Parser parser;
    private final boolean decorator;
    private final ThresholdTuning tuning;

    private PolicyType(String name, String usage, String description, Parser parser, boolean decorator,
            ThresholdTuning tuning) {
        this.name = Objects.requireNonNull(name, "name");
        if (!NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("a policy name is lower-case letters, digits, _ and -, starting with a letter;"
                    + " got \"" + name + "\"");
        }
        this.usage = Objects.requireNonNull(usage, "usage");
        if (!usage.equals(name) && !usage.startsWith(name + ":")) {
            throw new IllegalArgumentException("the usage line of " + name + " must start with \"" + name + ":\", got \""
                    + usage + "\"");
        }
        this.description = Objects.requireNonNull(description, "description");
        if (description.isBlank() || description.contains("\n")) {
            throw new IllegalArgumentException("the description of " + name + " must be one non-empty line");
        }
        this.parser = Objects.requireNonNull(parser, "parser");
        this.decorator = decorator;
        this.tuning = tuning;
    }

    /**
     * A policy type.
     *
     * @param name the name before the colon: lower-case letters, digits, {@code _} and {@code -}
     * @param usage the usage line, e.g. {@code every:N[,O]} (starts with the name)
     * @param description what the policy does, one line
     * @param parser the policy of a spec's arguments
     */
    public static PolicyType of(String name, String usage, String description, Parser parser) {
        return new PolicyType(name, usage, description, parser, false, null);
    }

    /**
     * A decorator type: its last argument is a whole spec ({@code warmup:K,spec}), parsed with
     * {@link SpecArguments#policy}; {@link CachePolicies#split} keeps the commas of that spec with it.
     */
    public static PolicyType decorator(String name, String usage, String description, Parser parser) {
        return new PolicyType(name, usage, description, parser, true, null);
    }

    /** This type, whose threshold {@code fora calibrate} ({@link dev.fora.core.calibration.Calibration}) can tune. */
    public PolicyType withTuning(ThresholdTuning thresholdTuning) {
        return new PolicyType(name, usage, description, parser, decorator, Objects.requireNonNull(thresholdTuning,
                "thresholdTuning"));
    }

    /** The name before the colon. */
    public String name() {
        return name;
    }

    /** The usage line, e.g. {@code taylorseer:N[,O]}. */
    public String usage() {
        return usage;
    }

    /** What the policy does, one line. */
    public String description() {
        return description;
    }

    /** Whether the last argument is a whole spec. */
    public boolean isDecorator() {
        return decorator;
    }

    /** What calibration tunes, for a threshold policy. */
    public Optional<ThresholdTuning> tuning() {
        return Optional.ofNullable(tuning);
    }

    CachePolicy parse(SpecArguments arguments) {
        CachePolicy policy = parser.parse(arguments);
        if (policy == null) {
            throw new IllegalStateException("the parser of policy type " + name + " returned null");
        }
        arguments.checkAllRead();
        return policy;
    }

    /**
     * The spec string of a policy of this type with these arguments, each in its canonical form:
     * a {@link Double} in its shortest decimal form ({@code 0.1}, {@code 1e-12}), a
     * {@link CachePolicy} as its spec, anything else as {@link String#valueOf}. No arguments give
     * the bare name. The form every built-in's {@link CachePolicy#spec()} is printed in.
     *
     * @throws IllegalArgumentException for a policy argument without a spec
     */
    public String spec(Object... arguments) {
        StringBuilder sb = new StringBuilder(name);
        for (int i = 0; i < arguments.length; i++) {
            sb.append(i == 0 ? ':' : ',').append(format(arguments[i]));
        }
        return sb.toString();
    }

    private static String format(Object argument) {
        if (argument instanceof Double d) {
            return SpecNumbers.format(d);
        }
        if (argument instanceof CachePolicy p) {
            return CachePolicies.toSpec(p);
        }
        return String.valueOf(argument);
    }

    @Override
    public String toString() {
        return usage;
    }
}
