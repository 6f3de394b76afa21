package dev.fora.core.cache;

import java.math.BigDecimal;
import java.util.regex.Pattern;

/** Parsing and canonical printing of the numbers in spec strings. */
final class SpecNumbers {

    private static final Pattern DECIMAL = Pattern.compile("[-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?");

    private SpecNumbers() {
    }

    /** The longest text an error message repeats as typed; longer text is cut in the middle. */
    static final int ECHO_LIMIT = 60;

    /**
     * The shortest decimal that parses back to {@code value}, as every built-in's
     * {@link CachePolicy#spec()} prints its numbers: plain ({@code 0.1}, {@code 3},
     * {@code -0.25}, {@code 0.0000001}) while the decimal exponent lies in {@code -7..20}, else in
     * exponent form ({@code 1e308}, {@code 2.5e-12}), so no spec prints hundreds of digits.
     */
    static String format(double value) {
        if (value == 0) {
            return "0";
        }
        BigDecimal d = BigDecimal.valueOf(value).stripTrailingZeros();
        String digits = d.unscaledValue().abs().toString();
        int exponent = digits.length() - 1 - d.scale();
        if (exponent >= -7 && exponent <= 20) {
            return d.toPlainString();
        }
        String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return (value < 0 ? "-" : "") + mantissa + "e" + exponent;
    }

    /** {@code text} for an error message: as typed, or its start and end if longer than {@link #ECHO_LIMIT}. */
    static String echo(String text) {
        if (text.length() <= ECHO_LIMIT) {
            return text;
        }
        return text.substring(0, ECHO_LIMIT / 2) + "..." + text.substring(text.length() - ECHO_LIMIT / 4) + " ("
                + text.length() + " characters)";
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
            throw new IllegalArgumentException(what + " must be a decimal number, got \"" + echo(text) + "\"");
        }
        double v = Double.parseDouble(text);
        if (!Double.isFinite(v)) {
            throw new IllegalArgumentException(what + " is out of range: " + echo(text));
        }
        return v;
    }

    /** A finite number {@code >= 0}. */
    static double nonNegative(String what, String text) {
        double v = parse(what, text);
        if (v < 0) {
            throw new IllegalArgumentException(what + " must be >= 0, got " + echo(text));
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
