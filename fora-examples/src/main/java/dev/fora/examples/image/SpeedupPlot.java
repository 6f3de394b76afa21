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
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The picture of {@code fora compare --plot}: two panels side by side, PSNR against the
 * uncached images (left) and the Frechet distance over its sampling-noise floor (right), each
 * against the speed-up; one point per policy and setting, one colour per policy family
 * (the part of the spec before the first colon, after any warm-up/cool-down).
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
        for (Map.Entry<String, List<Point>> e : byFamily.entrySet()) {
            List<Point> ps = new ArrayList<>(e.getValue());
            ps.sort((a, b) -> Double.compare(a.speedup(), b.speedup()));
            double[] x = new double[ps.size()];
            double[] y = new double[ps.size()];
            for (int i = 0; i < ps.size(); i++) {
                x[i] = ps.get(i).speedup();
                y[i] = fd ? ps.get(i).fdOverFloor() : ps.get(i).psnrDb();
            }
            XYSeries series = chart.addSeries(e.getKey(), x, y);
            series.setMarker(SeriesMarkers.CIRCLE);
            series.setLineStyle(new BasicStroke(0f));
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
