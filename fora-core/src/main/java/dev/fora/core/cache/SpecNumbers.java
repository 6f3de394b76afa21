package dev.fora.core.cache;

import java.math.BigDecimal;
import java.util.regex.Pattern;

/** Parsing and canonical printing of the numbers in spec strings. */
final class SpecNumbers {

    private static final Pattern DECIMAL = Pattern.compile("[-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?");

    private SpecNumbers() {
    }

    /**
     * The shortest plain decimal that parses back to {@code value} ({@code 0.1}, {@code 3},
     * {@code -0.25}), as every built-in's {@link CachePolicy#spec()} prints its numbers.
     */
    static String format(double value) {
        if (value == 0) {
            return "0";
        }
        String s = BigDecimal.valueOf(value).stripTrailingZeros().toPlainString();
        return s;
    }

    /**
     * A finite decimal number ({@code 0.1}, {@code 1e-3}, {@code -2}).
     *
     * @throws IllegalArgumentException naming {@code what} if {@code text} is not one
     */
    static double parse(String what, String text) {
        if (text.isEmpty()) {
            throw new IllegalArgumentException(what + " is missing");
        }
        if (!DECIMAL.matcher(text).matches()) {
            throw new IllegalArgumentException(what + " must be a decimal number, got \"" + text + "\"");
        }
        double v = Double.parseDouble(text);
        if (!Double.isFinite(v)) {
            throw new IllegalArgumentException(what + " is out of range: " + text);
        }
        return v;
    }

    /** A finite number {@code >= 0}. */
    static double nonNegative(String what, String text) {
        double v = parse(what, text);
        if (v < 0) {
            throw new IllegalArgumentException(what + " must be >= 0, got " + text);
        }
        return v;
    }

    /** Checks a threshold given in code: finite and {@code >= 0}. */
    static double checkThreshold(String what, double value) {
        if (!Double.isFinite(value) || value < 0) {
            throw new IllegalArgumentException(what + " must be a finite number >= 0, got " + value);
        }
        return value;
    }
}
