package dev.fora.core.tuning;

import dev.fora.core.cache.CacheSchedule;
import dev.fora.core.cache.Decision;
import dev.fora.core.model.BranchSpec;
import dev.fora.core.model.DiTConfig;
import dev.fora.core.recording.Recording;
import java.util.List;

/**
 * The replay estimate of {@link dev.fora.core.testing.PolicyHarness#replay} for a schedule,
 * computed directly and updated incrementally, so the search can try thousands of moves.
 *
 * <p>In a replay every branch returns its recorded output whatever its input, so the last
 * block's output at step {@code s} is {@code tokens(s) + sum_f gate_f(s) * F_f(s)} with the
 * recorded {@code F} where the schedule computes and the reused or forecast value elsewhere.
 * Its distance from the uncached replay is therefore {@code sum over cached f of
 * gate_f(s) * (Fhat_f(s) - F_f(s))}: a sum of one term per (feature, step). A move that
 * changes one feature's computed steps changes only that feature's terms from the first
 * changed step on; this class keeps the per-step sums and recomputes only those terms. It
 * computes in double precision, the replay in float: the two agree to rounding (checked by
 * the tests), and the search reports the replay's own number for its result.
 */
final class OpenLoopReplay {

    private final List<Recording> recordings;
    private final DiTConfig config;
    private final int steps;
    private final int features;
    private final int branches;
    private final int per;
    private final int images;
    /** {@code [recording][step]}: the sum of the cached features' terms, all rows. */
    private final double[][][] diff;
    /** {@code [step][image]}: the uncached stack's L1 output over the image's rows. */
    private final double[][] den;
    /** {@code [step][image]}: the relative error. */
    private final double[][] error;
    private boolean[][] mask;
    private CacheSchedule.Forecast forecast;
    private int from;
    private int to;
    private double[][][] saved;
    private double[][] savedError;

    OpenLoopReplay(List<Recording> recordings) {
        this.recordings = recordings;
        this.config = recordings.get(0).config();
        this.steps = recordings.get(0).steps();
        this.features = config.features();
        this.branches = config.layout().size();
        this.per = config.tokens() * config.hiddenSize();
        int n = 0;
        for (Recording r : recordings) {
            n += r.images();
        }
        this.images = n;
        this.diff = new double[recordings.size()][steps][];
        for (int k = 0; k < recordings.size(); k++) {
            for (int s = 0; s < steps; s++) {
                diff[k][s] = new double[recordings.get(k).rows() * per];
            }
        }
        this.den = new double[steps][images];
        this.error = new double[steps][images];
        for (int s = 0; s < steps; s++) {
            int image = 0;
            for (int k = 0; k < recordings.size(); k++) {
                Recording r = recordings.get(k);
                double[] stack = new double[r.rows() * per];
                for (int f = 0; f < features; f++) {
                    term(r, f, s, new double[] {1}, new int[] {s}, 1, stack, false);
                }
                for (int i = 0; i < r.images(); i++) {
                    den[s][image++] = l1(stack, r.rowsOf(i));
                }
            }
        }
    }

    /** Starts over from {@code m} (kept by reference: the caller changes it between {@link #begin} and {@link #end}). */
    double reset(boolean[][] m, CacheSchedule.Forecast f) {
        this.mask = m;
        this.forecast = f;
        for (double[][] rec : diff) {
            for (double[] d : rec) {
                java.util.Arrays.fill(d, 0);
            }
        }
        for (int g = 0; g < features; g++) {
            add(g, 0, steps, 1);
        }
        errors(0, steps);
        return estimate();
    }

    /**
     * Before the caller changes the computed steps of the {@code changed} features between
     * steps {@code first} and {@code last}: takes their terms out. Only the steps up to the
     * {@code historyLength}-th computed step after {@code last} can change: later steps
     * forecast from computed steps the move did not touch.
     */
    void begin(int first, int last, int... changed) {
        this.from = first;
        this.to = first;
        int history = forecast.historyLength();
        for (int f : changed) {
            int seen = 0;
            int end = steps;
            for (int s = last + 1; s < steps; s++) {
                if (mask[f][s] && ++seen == history) {
                    end = s;
                    break;
                }
            }
            to = Math.max(to, end);
        }
        saved = new double[diff.length][to - first][];
        savedError = new double[to - first][];
        for (int s = first; s < to; s++) {
            for (int k = 0; k < diff.length; k++) {
                saved[k][s - first] = diff[k][s].clone();
            }
            savedError[s - first] = error[s].clone();
        }
        for (int f : changed) {
            add(f, first, to, -1);
        }
    }

    /** After the change: puts the changed features' terms back and gives the new estimate. */
    double end(int... changed) {
        for (int f : changed) {
            add(f, from, to, 1);
        }
        errors(from, to);
        return estimate();
    }

    /** Undoes the last {@link #begin}/{@link #end} (the caller restores its mask). */
    void revert() {
        for (int s = from; s < to; s++) {
            for (int k = 0; k < diff.length; k++) {
                diff[k][s] = saved[k][s - from];
            }
            error[s] = savedError[s - from];
        }
    }

    private double estimate() {
        double sum = 0;
        for (double[] e : error) {
            for (double x : e) {
                sum += x;
            }
        }
        return sum / ((double) steps * images);
    }

    private void errors(int first, int end) {
        for (int s = first; s < end; s++) {
            int image = 0;
            for (int k = 0; k < recordings.size(); k++) {
                Recording r = recordings.get(k);
                for (int i = 0; i < r.images(); i++) {
                    double num = l1(diff[k][s], r.rowsOf(i));
                    error[s][image] = den[s][image] == 0 ? num : num / den[s][image];
                    image++;
                }
            }
        }
    }

    private double l1(double[] v, int[] rows) {
        double sum = 0;
        for (int row : rows) {
            for (int i = row * per; i < (row + 1) * per; i++) {
                sum += Math.abs(v[i]);
            }
        }
        return sum;
    }

    /** Adds {@code sign} times feature {@code f}'s terms at the steps {@code first..end-1}, under the current mask. */
    private void add(int f, int first, int end, double sign) {
        int history = forecast.historyLength();
        int[] computed = new int[history];
        for (int s = Math.max(first, 1); s < end; s++) {
            if (mask[f][s]) {
                continue;
            }
            int n = 0;
            for (int p = s - 1; p >= 0 && n < history; p--) {
                if (mask[f][p]) {
                    computed[n++] = p;
                }
            }
            int[] from = java.util.Arrays.copyOf(computed, n);
            Decision d = forecast.decision(from, s);
            double[] c = d.kind() == Decision.Kind.REUSE ? new double[] {1} : d.coefficients();
            for (int k = 0; k < recordings.size(); k++) {
                term(recordings.get(k), f, s, c, from, sign, diff[k][s], true);
            }
        }
    }

    /**
     * Adds {@code sign * gate_f(s) * (sum_j c_j F_f(at_j) - F_f(s))} (or, without
     * {@code subtractOwn}, {@code sign * gate * sum_j c_j F_f(at_j)}) to {@code out}.
     */
    private void term(Recording r, int f, int s, double[] c, int[] at, double sign, double[] out, boolean subtractOwn) {
        int block = f / branches;
        BranchSpec spec = config.layout().branch(f % branches);
        float[] gate = spec.gated() ? r.modulation(s, block, spec.gate()) : null;
        float[] own = r.feature(s, f);
        float[][] past = new float[c.length][];
        for (int j = 0; j < c.length; j++) {
            past[j] = r.feature(at[j], f);
        }
        int d = config.hiddenSize();
        int tokens = config.tokens();
        for (int row = 0; row < r.rows(); row++) {
            for (int t = 0; t < tokens; t++) {
                int base = row * per + t * d;
                for (int x = 0; x < d; x++) {
                    int i = base + x;
                    double v = subtractOwn ? -own[i] : 0;
                    for (int j = 0; j < c.length; j++) {
                        v += c[j] * past[j][i];
                    }
                    out[i] += sign * (gate == null ? 1 : gate[row * d + x]) * v;
                }
            }
        }
    }
}
