package dev.fora.examples.progress;

import java.io.PrintStream;
import java.util.Locale;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Progress of a run on stderr: sampler steps done out of all steps of the run, images done,
 * elapsed time and ETA (me.tongfei:progressbar). {@link #NONE} for {@code --quiet}.
 */
public interface Progress extends AutoCloseable {

    /** Reports nothing. */
    Progress NONE = new Progress() {
        @Override
        public void step() {
        }

        @Override
        public void imagesDone(int images) {
        }

        @Override
        public void phase(String name) {
        }

        @Override
        public void close() {
        }
    };

    /** One sampler step (of one batch) finished. */
    void step();

    /** {@code images} more images are finished. */
    void imagesDone(int images);

    /** Names what runs now (e.g. the policy), shown before the bar. */
    void phase(String name);

    /** Finishes the bar. Idempotent. */
    @Override
    void close();

    /**
     * A progress bar on {@code System.err}, or {@link #NONE} when {@code quiet}.
     *
     * @param task the task name shown first
     * @param totalSteps sampler steps of the whole run (steps x batches x policies)
     * @param totalImages images of the whole run
     */
    static Progress create(boolean quiet, String task, long totalSteps, int totalImages) {
        if (quiet || totalSteps <= 0) {
            return NONE;
        }
        return new Bar(System.err, task, totalSteps, totalImages);
    }

    /** The console bar. */
    final class Bar implements Progress {
        private final ProgressBar bar;
        private final int totalImages;
        private int images;
        private String phase = "";
        private boolean closed;

        Bar(PrintStream out, String task, long totalSteps, int totalImages) {
            this.totalImages = totalImages;
            this.bar = new ProgressBarBuilder()
                    .setTaskName(task)
                    .setInitialMax(totalSteps)
                    .setUnit(" steps", 1)
                    .setStyle(ProgressBarStyle.ASCII)
                    .setUpdateIntervalMillis(250)
                    .setMaxRenderedLength(110)
                    .setConsumer(new ConsoleProgressBarConsumer(out, 110))
                    .build();
            message();
        }

        @Override
        public synchronized void step() {
            bar.step();
        }

        @Override
        public synchronized void imagesDone(int n) {
            images += n;
            message();
        }

        @Override
        public synchronized void phase(String name) {
            phase = name;
            message();
        }

        private void message() {
            bar.setExtraMessage(String.format(Locale.ROOT, "%s%d/%d images", phase.isEmpty() ? "" : phase + ", ",
                    images, totalImages));
        }

        @Override
        public synchronized void close() {
            if (!closed) {
                closed = true;
                bar.close();
            }
        }
    }
}
