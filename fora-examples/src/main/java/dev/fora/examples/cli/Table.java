package dev.fora.examples.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** A plain-text table with right-aligned columns (left-aligned first column). */
final class Table {

    private final List<String[]> rows = new ArrayList<>();

    Table(String... header) {
        rows.add(header);
    }

    void row(String... cells) {
        rows.add(cells);
    }

    /** One number as a cell: {@code format} applied in {@link Locale#ROOT}. */
    static String f(String format, double v) {
        return String.format(Locale.ROOT, format, v);
    }

    /** Text in the style of a GitHub Markdown table (renders as-is in a terminal too). */
    String render() {
        int cols = rows.get(0).length;
        int[] width = new int[cols];
        for (String[] r : rows) {
            for (int c = 0; c < cols; c++) {
                width[c] = Math.max(width[c], r[c].length());
            }
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < rows.size(); i++) {
            line(sb, rows.get(i), width);
            if (i == 0) {
                sb.append('|');
                for (int c = 0; c < cols; c++) {
                    sb.append(c == 0 ? ":" : "-").append("-".repeat(width[c])).append(c == 0 ? "-" : ":").append('|');
                }
                sb.append('\n');
            }
        }
        return sb.toString();
    }

    private static void line(StringBuilder sb, String[] cells, int[] width) {
        sb.append('|');
        for (int c = 0; c < cells.length; c++) {
            String s = cells[c];
            String pad = " ".repeat(width[c] - s.length());
            sb.append(' ').append(c == 0 ? s + pad : pad + s).append(" |");
        }
        sb.append('\n');
    }
}
