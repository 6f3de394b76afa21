package dev.fora.core.cache;

import java.util.Arrays;

/**
 * The comma-separated arguments of one spec ({@code 5,2} of {@code taylorseer:5,2}), as a
 * {@link PolicyType.Parser} reads them. Every reader names what it reads ({@code "interval N"}),
 * and its errors are {@link PolicySpecException}s naming the spec, the policy, that argument and
 * the usage line: a missing argument ({@code teacache threshold T is missing (usage:
 * teacache:T[,C0,C1,...])}), an empty one, one that is not a number of the right kind. An
 * argument never read is an error too ({@code fbcache takes at most 1 argument(s), got 2}).
 * Whitespace around the separators was removed before the parser sees the arguments.
 */
public final class SpecArguments {

    private final String whole;
    private final PolicyType type;
    private final String[] parts;
    private final int depth;
    private int read;

    SpecArguments(String whole, PolicyType type, String text, int depth) {
        this.whole = whole;
        this.type = type;
        this.parts = text.isEmpty() ? new String[0] : text.split(",", -1);
        this.depth = depth;
    }

    /** How many arguments the spec has ({@code 0} for a bare name or nothing after the colon). */
    public int count() {
        return parts.length;
    }

    /** Whether argument {@code index} (0-based) is given. */
    public boolean has(int index) {
        return index < parts.length;
    }

    /**
     * Argument {@code index} as written.
     *
     * @throws PolicySpecException if it is missing or empty
     */
    public String text(int index, String what) {
        if (index >= parts.length) {
            throw error(what + " is missing");
        }
        read = Math.max(read, index + 1);
        if (parts[index].isEmpty()) {
            throw error("has an empty argument");
        }
        return parts[index];
    }

    /** Argument {@code index} as an integer {@code >= 1}. */
    public int positiveInt(int index, String what) {
        return positiveInt(text(index, what), what);
    }

    /** Argument {@code index} as an integer {@code >= 0}. */
    public int nonNegativeInt(int index, String what) {
        String digits = text(index, what);
        return digits.equals("0") ? 0 : positiveInt(digits, what);
    }

    /** Argument {@code index} as a finite decimal ({@code 0.1}, {@code 1e-3}, {@code -2}). */
    public double decimal(int index, String what) {
        return decimal(text(index, what), what);
    }

    /** Argument {@code index} as a finite decimal {@code >= 0}. */
    public double nonNegativeDecimal(int index, String what) {
        String text = text(index, what);
        try {
            return SpecNumbers.nonNegative(what, text);
        } catch (IllegalArgumentException e) {
            throw error(e.getMessage());
        }
    }

    /**
     * {@code text} (part of an argument, like the {@code 4} of {@code mlp=4}) as an integer
     * {@code >= 1}.
     */
    public int positiveInt(String text, String what) {
        if (text.isEmpty()) {
            throw error(what + " is missing");
        }
        for (int i = 0; i < text.length(); i++) {
            if (text.charAt(i) < '0' || text.charAt(i) > '9') {
                throw error(what + " must be a positive integer, got \"" + SpecNumbers.echo(text) + "\"");
            }
        }
        if (text.length() > 1 && text.charAt(0) == '0') {
            throw error(what + " must be written without leading zeros, got \"" + SpecNumbers.echo(text) + "\"");
        }
        int value;
        try {
            value = Integer.parseInt(text);
        } catch (NumberFormatException e) {
            throw error(what + " is too large: " + SpecNumbers.echo(text) + " (at most " + Integer.MAX_VALUE + ")");
        }
        if (value < 1) {
            throw error(what + " must be >= 1, got " + value);
        }
        return value;
    }

    /** {@code text} (part of an argument) as a finite decimal. */
    public double decimal(String text, String what) {
        try {
            return SpecNumbers.parse(what, text);
        } catch (IllegalArgumentException e) {
            throw error(e.getMessage());
        }
    }

    /**
     * The arguments from {@code index} on, parsed as one nested spec (a decorator's inner spec).
     *
     * @throws PolicySpecException if it is missing or invalid, or decorators nest more than
     *     {@link CachePolicies#MAX_NESTING} deep
     */
    public CachePolicy policy(int index, String what) {
        if (index >= parts.length) {
            throw error(what + " is missing");
        }
        read = parts.length;
        if (depth == CachePolicies.MAX_NESTING) {
            throw new PolicySpecException(whole, "decorators nest more than " + CachePolicies.MAX_NESTING + " deep");
        }
        return CachePolicies.parse(whole, String.join(",", Arrays.copyOfRange(parts, index, parts.length)), depth + 1);
    }

    /**
     * An error about this spec's arguments: {@code <name> <problem> (usage: <usage>)}.
     *
     * @param problem what is wrong, e.g. {@code "interval N must be >= 1, got 0"}
     */
    public PolicySpecException error(String problem) {
        return new PolicySpecException(whole, type.name() + " " + problem + " (usage: " + type.usage() + ")");
    }

    void checkAllRead() {
        if (read < parts.length) {
            throw parts[parts.length - 1].isEmpty() ? error("has an empty argument")
                    : error("takes at most " + read + " argument(s), got " + parts.length);
        }
    }
}
