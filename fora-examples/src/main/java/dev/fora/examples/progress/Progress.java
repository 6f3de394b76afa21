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
        public void complete() {
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

    /** Fills the bar: the work ended before its planned total (a search that ran out of moves to try). */
    void complete();

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
        return new Bar(System.err, task, totalSteps, " steps", totalImages);
    }

    /**
     * A progress bar on {@code System.err} counting {@code total} units of work that are not
     * sampler steps (shown as {@code unit}, no image count), or {@link #NONE} when {@code quiet}.
     * {@link #step()} counts one unit.
     */
    static Progress counting(boolean quiet, String task, long total, String unit) {
        if (quiet || total <= 0) {
            return NONE;
        }
        return new Bar(System.err, task, total, " " + unit, -1);
    }

    /** The console bar. */
    final class Bar implements Progress {
        private final ProgressBar bar;
        private final int totalImages;
        private int images;
        private String phase = "";
        private boolean closed;

        /** @param totalImages images of the run, or -1 to show no image count */
        Bar(PrintStream out, String task, long totalSteps, String unit, int totalImages) {
            this.totalImages = totalImages;
            this.bar = new ProgressBarBuilder()
                    .setTaskName(task)
                    .setInitialMax(totalSteps)
                    .setUnit(unit, 1)
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
            bar.setExtraMessage(totalImages < 0 ? phase : String.format(Locale.ROOT, "%s%d/%d images",
                    phase.isEmpty() ? "" : phase + ", ", images, totalImages));
        }

        @Override
        public synchronized void complete() {
            bar.maxHint(bar.getCurrent());
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
