package dev.fora.examples.json;

/** Gson's errors, worded for the person who wrote the JSON. */
public final class JsonErrors {

    private JsonErrors() {
    }

    /**
     * A syntax error's first line, naming the line, column and path of the problem, without
     * Gson's advice to programmers (to parse leniently, a troubleshooting link).
     */
    public static String syntax(Exception e) {
        String m = e.getMessage() == null ? "malformed JSON" : e.getMessage().lines().findFirst().orElse("malformed JSON");
        return m.replaceFirst("^Use JsonReader\\.setStrictness\\(.*?\\) to accept malformed JSON", "malformed JSON");
    }
}
