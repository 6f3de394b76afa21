package dev.fora.examples.cli;

import static dev.fora.examples.cli.Table.f;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.recording.Recording;
import dev.fora.core.testing.PolicyHarness;
import dev.fora.core.testing.ReplayReport;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code fora replay}: policies against a recording, without the model: compute fraction and estimated error. */
@Command(name = "replay", sortOptions = false, mixinStandardHelpOptions = true,
        description = {"Run cache policies against a recording ('fora record'), without the model, in milliseconds.",
                "Every decision sees the recorded features and measurements. Prints per policy the compute fraction, the "
                + "FLOP-bound speed-up and the estimated error: the mean one-step relative error of the last block's "
                + "output (each step starts from the recorded tokens; see PolicyHarness.replay).",
                "With --against FILE (the JSON of 'fora compare' on the same model, sampler and steps), also the measured "
                + "PSNR of each policy and the Spearman rank correlation between estimate and measured error."},
        footer = {"", "Example: fora replay --recording ddim50.frec --policy fora:3,taylorseer:5,fbcache:0.2"})
public final class ReplayCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--recording", paramLabel = "FILE", required = true, description = "A recording written by fora record.")
    Path recording;

    @Option(names = "--policy", paramLabel = "SPEC", defaultValue = "fora:2,fora:3,fora:5,taylorseer:5",
            description = "Cache policy specs; repeat or separate by commas (default: ${DEFAULT-VALUE}).")
    List<String> policies;

    @Option(names = "--against", paramLabel = "FILE",
            description = "JSON of 'fora compare' (same model, sampler, steps) to rank the estimates against.")
    Path against;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write one JSON object per policy (an array).")
    Path json;

    @Option(names = {"-q", "--quiet"}, description = "Accepted for symmetry with the other commands (replay prints no progress).")
    boolean quiet;

    @Option(names = {"-v", "--verbose"}, description = "Print stack traces of errors.")
    boolean verbose;

    @Override
    public Integer call() {
        Map<String, CachePolicy> specs = Policies.noneAnd(policies);
        Outputs.checkWritable(json, "--json", spec);
        Inputs.checkReadable(recording, "--recording");
        if (against != null) {
            Inputs.checkReadable(against, "--against");
        }
        Recording r;
        try {
            r = Recording.read(recording);
        } catch (IOException e) {
            throw Inputs.unreadable("--recording", recording, e);
        }
        Map<String, Double> measured = against == null ? Map.of() : psnrs(against, r);
        PrintWriter stdout = spec.commandLine().getOut();
        stdout.printf(Locale.ROOT, "%s%n", r);
        Table t = measured.isEmpty() ? new Table("policy", "compute", "FLOP bound", "est. error", "max error", "replay ms")
                : new Table("policy", "compute", "FLOP bound", "est. error", "max error", "replay ms", "measured PSNR dB");
        List<Map<String, Object>> rows = new ArrayList<>();
        List<double[]> pairs = new ArrayList<>();
        List<String> failed = new ArrayList<>();
        for (Map.Entry<String, CachePolicy> e : specs.entrySet()) {
            ReplayReport rep;
            try {
                rep = PolicyHarness.replay(r, e.getValue());
            } catch (IllegalArgumentException ex) {
                // The policy does not fit this recording: say why after the table of the others.
                failed.add(e.getKey() + ": " + ex.getMessage());
                List<String> cells = new ArrayList<>(List.of(e.getKey(), "-", "-", "-", "-", "-"));
                if (!measured.isEmpty()) {
                    cells.add("-");
                }
                t.row(cells.toArray(new String[0]));
                continue;
            }
            Double psnr = measured.get(e.getKey());
            List<String> cells = new ArrayList<>(List.of(e.getKey(), f("%.3f", rep.computeFraction()),
                    f("%.2fx", rep.flopSpeedup()), f("%.4f", rep.estimatedError()), f("%.4f", rep.maxError()),
                    f("%.1f", rep.nanos() / 1e6)));
            if (!measured.isEmpty()) {
                cells.add(psnr == null ? "-" : f("%.2f", psnr));
            }
            t.row(cells.toArray(new String[0]));
            if (psnr != null) {
                pairs.add(new double[] {rep.estimatedError(), -psnr});
            }
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("policy", e.getKey());
            o.put("compute_fraction", rep.computeFraction());
            o.put("flop_speedup", rep.flopSpeedup());
            o.put("estimated_error", rep.estimatedError());
            o.put("max_error", rep.maxError());
            o.put("replay_ms", rep.nanos() / 1e6);
            o.put("measured_psnr_db", psnr);
            rows.add(o);
        }
        stdout.print(t.render());
        if (!measured.isEmpty()) {
            if (pairs.size() >= 3) {
                stdout.printf(Locale.ROOT, "Spearman rank correlation of the estimate with the measured error (-PSNR), %d policies:"
                        + " %.3f%n", pairs.size(), spearman(pairs));
            } else {
                stdout.println("(fewer than 3 policies are also in " + against + ": no rank correlation)");
            }
        }
        if (json != null) {
            Outputs.writeJson(rows, json, "--json");
            stdout.printf(Locale.ROOT, "wrote %s%n", json);
        }
        stdout.flush();
        if (!failed.isEmpty()) {
            throw new CliException(ExitCodes.USAGE, String.join("; ", failed));
        }
        return ExitCodes.OK;
    }

    /**
     * Policy spec to PSNR from a compare JSON; a usage error if the JSON's model, sampler or step
     * count (where it records them) differs from the recording's: its PSNRs would measure another run.
     */
    static Map<String, Double> psnrs(Path file, Recording recording) {
        Map<String, Double> out = new HashMap<>();
        Map<String, String> recorded = recording.metadata();
        recorded.put("steps", Integer.toString(recording.steps()));
        try {
            JsonElement root = JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8));
            JsonArray array = root.getAsJsonArray();
            for (JsonElement e : array) {
                JsonObject o = e.getAsJsonObject();
                for (String key : List.of("model", "sampler", "steps")) {
                    if (o.has(key) && recorded.containsKey(key) && !o.get(key).getAsString().equals(recorded.get(key))) {
                        throw new CliException(ExitCodes.USAGE, "--against: " + file + " is a compare of " + key + " "
                                + o.get(key).getAsString() + " but the recording's " + key + " is " + recorded.get(key)
                                + "; compare and record the same model, sampler and steps");
                    }
                }
                if (o.has("psnr_db") && !o.get("psnr_db").isJsonNull()) {
                    out.put(o.get("policy").getAsString(), o.get("psnr_db").getAsDouble());
                }
            }
        } catch (IOException e) {
            throw Inputs.unreadable("--against", file, e);
        } catch (CliException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new CliException(ExitCodes.USAGE, "--against: cannot read " + file + " as compare JSON: " + e.getMessage(), e);
        }
        return out;
    }

    /** Spearman's rho of the pairs' two columns (average ranks for ties). */
    static double spearman(List<double[]> pairs) {
        double[] a = ranks(pairs, 0);
        double[] b = ranks(pairs, 1);
        double ma = 0;
        double mb = 0;
        for (int i = 0; i < a.length; i++) {
            ma += a[i] / a.length;
            mb += b[i] / b.length;
        }
        double num = 0;
        double da = 0;
        double db = 0;
        for (int i = 0; i < a.length; i++) {
            num += (a[i] - ma) * (b[i] - mb);
            da += (a[i] - ma) * (a[i] - ma);
            db += (b[i] - mb) * (b[i] - mb);
        }
        return num / Math.sqrt(da * db);
    }

    private static double[] ranks(List<double[]> pairs, int column) {
        int n = pairs.size();
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (x, y) -> Double.compare(pairs.get(x)[column], pairs.get(y)[column]));
        double[] rank = new double[n];
        int i = 0;
        while (i < n) {
            int j = i;
            while (j + 1 < n && pairs.get(order[j + 1])[column] == pairs.get(order[i])[column]) {
                j++;
            }
            for (int k = i; k <= j; k++) {
                rank[order[k]] = (i + j) / 2.0 + 1;
            }
            i = j + 1;
        }
        return rank;
    }
}
