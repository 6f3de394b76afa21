package dev.fora.examples.image;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.knowm.xchart.AnnotationText;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The picture of {@code fora compare --plot}: two panels side by side, PSNR against the
 * uncached images (left) and the Frechet distance over its sampling-noise floor (right), each
 * against the speed-up; one point per policy and setting, labelled with its spec, one colour
 * per policy family (the part of the spec before the first colon, after any
 * warm-up/cool-down). Each family's Pareto frontier (the settings no other setting of the
 * family beats on both axes) is drawn as a line; its dominated settings are unjoined diamonds.
 */
public final class SpeedupPlot {

    /**
     * One policy's point.
     *
     * @param policy the spec
     * @param speedup the x coordinate
     * @param psnrDb PSNR against uncached (finite)
     * @param fdOverFloor Frechet distance divided by the noise floor, or NaN
     */
    public record Point(String policy, double speedup, double psnrDb, double fdOverFloor) {
    }

    private static final int WIDTH = 760;
    private static final int HEIGHT = 560;

    private SpeedupPlot() {
    }

    /** The family of a spec: {@code taylorseer} for {@code warmup:2,taylorseer:5,2}. */
    public static String family(String spec) {
        String s = spec;
        while (s.startsWith("warmup:") || s.startsWith("cooldown:")) {
            int comma = s.indexOf(',');
            if (comma < 0) {
                break;
            }
            s = s.substring(comma + 1);
        }
        int colon = s.indexOf(':');
        return colon < 0 ? s : s.substring(0, colon);
    }

    /** Writes the two-panel PNG. */
    public static void write(List<Point> points, String title, String xLabel, OutputStream out) throws IOException {
        BufferedImage left = BitmapEncoder.getBufferedImage(chart(points, title + ": PSNR against uncached", xLabel,
                "PSNR dB (higher is better)", false));
        BufferedImage right = BitmapEncoder.getBufferedImage(chart(points, title + ": FD over the noise floor", xLabel,
                "FD / floor (lower is better; 1 = floor)", true));
        BufferedImage both = new BufferedImage(left.getWidth() + right.getWidth(), Math.max(left.getHeight(), right.getHeight()),
                BufferedImage.TYPE_INT_RGB);
        Graphics2D g = both.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, both.getWidth(), both.getHeight());
        g.drawImage(left, 0, 0, null);
        g.drawImage(right, left.getWidth(), 0, null);
        g.dispose();
        ImageIO.write(both, "png", out);
    }

    /** One colour per family, for its frontier line and its dominated points. */
    private static final Color[] PALETTE = {new Color(31, 119, 180), new Color(255, 127, 14), new Color(44, 160, 44),
        new Color(214, 39, 40), new Color(148, 103, 189), new Color(140, 86, 75), new Color(227, 119, 194),
        new Color(127, 127, 127), new Color(188, 189, 34), new Color(23, 190, 207)};

    /**
     * The family's Pareto frontier, by speed-up: the points no other point of the family beats
     * on both speed-up and quality (higher PSNR, or lower FD).
     */
    static List<Point> frontier(List<Point> family, boolean fd) {
        List<Point> sorted = new ArrayList<>(family);
        sorted.sort((a, b) -> a.speedup() != b.speedup() ? Double.compare(b.speedup(), a.speedup())
                : Double.compare(better(b, fd), better(a, fd)));
        List<Point> out = new ArrayList<>();
        double best = Double.NEGATIVE_INFINITY;
        for (Point p : sorted) {
            if (better(p, fd) > best) {
                out.add(0, p);
                best = better(p, fd);
            }
        }
        return out;
    }

    /** Quality as "higher is better". */
    private static double better(Point p, boolean fd) {
        return fd ? -p.fdOverFloor() : p.psnrDb();
    }

    private static double y(Point p, boolean fd) {
        return fd ? p.fdOverFloor() : p.psnrDb();
    }

    private static double[] yRange(Map<String, List<Point>> byFamily, boolean fd) {
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (List<Point> ps : byFamily.values()) {
            for (Point p : ps) {
                lo = Math.min(lo, y(p, fd));
                hi = Math.max(hi, y(p, fd));
            }
        }
        return lo < hi ? new double[] {lo, hi} : new double[] {lo, lo + 1};
    }

    /** A point's label: its spec, or the file name of a {@code schedule:} spec. */
    static String label(String spec) {
        int at = spec.indexOf("schedule:");
        if (at < 0) {
            return spec;
        }
        String file = spec.substring(at + "schedule:".length());
        int comma = file.indexOf(',');
        String name = java.nio.file.Path.of(comma < 0 ? file : file.substring(0, comma)).getFileName().toString();
        return spec.substring(0, at) + "schedule:" + name;
    }

    private static XYChart chart(List<Point> points, String title, String xLabel, String yLabel, boolean fd) {
        XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle(xLabel).yAxisTitle(yLabel)
                .build();
        Styler s = chart.getStyler();
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        chart.getStyler().setMarkerSize(9);
        s.setChartBackgroundColor(Color.WHITE);
        s.setPlotBackgroundColor(Color.WHITE);
        s.setLegendPosition(Styler.LegendPosition.InsideNE);
        s.setLegendFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        s.setChartTitleFont(new Font(Font.SANS_SERIF, Font.BOLD, 13));
        chart.getStyler().setYAxisLogarithmic(fd);
        Map<String, List<Point>> byFamily = new LinkedHashMap<>();
        for (Point p : points) {
            if (fd && !(p.fdOverFloor() > 0)) {
                continue;
            }
            if (!fd && !Double.isFinite(p.psnrDb())) {
                continue;
            }
            byFamily.computeIfAbsent(family(p.policy()), k -> new ArrayList<>()).add(p);
        }
        double[] range = yRange(byFamily, fd);
        int colour = 0;
        for (Map.Entry<String, List<Point>> e : byFamily.entrySet()) {
            Color c = PALETTE[colour++ % PALETTE.length];
            List<Point> frontier = frontier(e.getValue(), fd);
            XYSeries line = chart.addSeries(e.getKey(), frontier.stream().mapToDouble(Point::speedup).toArray(),
                    frontier.stream().mapToDouble(p -> y(p, fd)).toArray());
            line.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
            line.setMarker(SeriesMarkers.CIRCLE);
            line.setMarkerColor(c);
            line.setLineColor(c);
            List<Point> dominated = new ArrayList<>(e.getValue());
            dominated.removeAll(frontier);
            if (!dominated.isEmpty()) {
                XYSeries rest = chart.addSeries(e.getKey() + " (dominated)", dominated.stream().mapToDouble(Point::speedup)
                        .toArray(), dominated.stream().mapToDouble(p -> y(p, fd)).toArray());
                rest.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
                rest.setMarker(SeriesMarkers.DIAMOND);
                rest.setMarkerColor(c);
                rest.setShowInLegend(false);
            }
            for (Point p : e.getValue()) {
                // above the marker: a small offset in data units (log-scaled for the FD panel)
                double y = fd ? y(p, fd) * Math.pow(range[1] / range[0], 0.03) : y(p, fd) + 0.03 * (range[1] - range[0]);
                chart.addAnnotation(new AnnotationText(label(p.policy()), p.speedup(), y, false));
            }
        }
        if (fd && !byFamily.isEmpty()) {
            double lo = points.stream().mapToDouble(Point::speedup).min().orElse(1);
            double hi = points.stream().mapToDouble(Point::speedup).max().orElse(1);
            XYSeries floor = chart.addSeries("noise floor", new double[] {lo, hi}, new double[] {1, 1});
            floor.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
            floor.setMarker(SeriesMarkers.NONE);
            floor.setLineColor(Color.GRAY);
        }
        return chart;
    }
}
