package dev.fora.examples.image;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;

class SpeedupPlotTest {

    private static SpeedupPlot.Point p(String spec, double x, double psnr, double fd) {
        return new SpeedupPlot.Point(spec, x, psnr, fd);
    }

    @Test
    void theFrontierKeepsOnlyTheSettingsNothingBeatsOnBothAxes() {
        List<SpeedupPlot.Point> family = List.of(p("fora:2", 2, 35, 1.5), p("fora:3", 3, 30, 2), p("warmup:2,fora:3", 2.8, 29, 3),
                p("fora:5", 5, 25, 9), p("fora:4", 4, 31, 4));
        assertThat(SpeedupPlot.frontier(family, false)).extracting(SpeedupPlot.Point::policy)
                .containsExactly("fora:2", "fora:4", "fora:5");
        assertThat(SpeedupPlot.frontier(family, true)).extracting(SpeedupPlot.Point::policy)
                .containsExactly("fora:2", "fora:3", "fora:4", "fora:5");
    }

    @Test
    void aScheduleIsLabelledByItsFileName() {
        assertThat(SpeedupPlot.label("warmup:2,schedule:/tmp/x/ddim-4.5x.json,allow=model")).isEqualTo("warmup:2,schedule:ddim-4.5x.json");
        assertThat(SpeedupPlot.label("taylorseer:5,3")).isEqualTo("taylorseer:5,3");
        assertThat(SpeedupPlot.family("warmup:2,schedule:/tmp/x.json")).isEqualTo("schedule");
    }

    @Test
    void writesAPng() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        SpeedupPlot.write(List.of(p("fora:2", 2, 35, 1.5), p("fora:4", 4, 31, 4), p("taylorseer:5,3", 4.5, 32, 2),
                p("schedule:/a/t.json", 4.5, 34, 1.2)), "test", "FLOP bound", out);
        assertThat(ImageIO.read(new ByteArrayInputStream(out.toByteArray())).getWidth()).isGreaterThan(1000);
    }
}
