package dev.fora.examples.cli;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonPrimitive;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import dev.fora.core.cache.CachePolicies;
import dev.fora.core.cache.CachePolicy;
import dev.fora.core.cache.CacheSchedule;
import dev.fora.core.cache.ScheduleException;
import dev.fora.core.cache.SchedulePolicy;
import dev.fora.core.cache.WarmupCooldown;
import dev.fora.examples.json.JsonErrors;
import java.io.IOException;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The schedule file ({@code fora tune} writes it, {@code schedule:FILE} reads it) and the
 * {@code schedule:} spec. The core keeps {@link CacheSchedule} a plain object and has no JSON
 * library; the file lives here, next to the CLI's other JSON (Gson), and a spec that opens a
 * file is resolved only where files are allowed: the CLI's {@code --policy}.
 *
 * <pre>
 * {
 *   "format": "fora4j-schedule", "format_version": 1,
 *   "model": "SHA-256 of the DiT weights", "sampler": "ddim", "steps": 50,
 *   "forecast": {"kind": "hicache", "order": 3, "sigma": 0.75},   (or "reuse", "taylorseer" with an order)
 *   "separate_guidance_halves": false,
 *   "blocks": [{"block": 0, "attn": [0, 4, 9, ...], "mlp": [0, 5, ...]}, ...]
 * }
 * </pre>
 * Reading is strict: not JSON, an unknown or missing field, a wrong type or an invalid step
 * list is a {@link ScheduleException} ({@code MALFORMED}) naming the file and the field.
 */
public final class ScheduleFiles {

    /** The {@code format} field. */
    public static final String FORMAT = "fora4j-schedule";

    /** The {@code format_version} this code reads and writes. */
    public static final int FORMAT_VERSION = 1;

    /** One decorator in front of {@code schedule:}. */
    private static final Pattern DECORATOR = Pattern.compile("(warmup|cooldown):([0-9]+),");

    private static final Set<String> TOP = Set.of("format", "format_version", "model", "sampler", "steps", "forecast",
            "separate_guidance_halves", "blocks");

    private ScheduleFiles() {
    }

    /** Whether {@code spec} is a {@code schedule:} spec, possibly under {@code warmup:}/{@code cooldown:}. */
    public static boolean isScheduleSpec(String spec) {
        return spec.strip().startsWith("schedule:", decorators(spec.strip(), new ArrayList<>()));
    }

    /**
     * Collects the {@code warmup:K,}/{@code cooldown:K,} prefixes of {@code spec} (name and K,
     * outermost first) and returns where the rest starts. A loop, not a regular expression: a
     * spec may repeat a decorator thousands of times.
     */
    private static int decorators(String spec, List<String[]> out) {
        int at = 0;
        while (true) {
            Matcher d = DECORATOR.matcher(spec).region(at, spec.length());
            if (!d.lookingAt()) {
                return at;
            }
            out.add(new String[] {d.group(1), d.group(2)});
            at = d.end();
        }
    }

    /**
     * The policy of a {@code schedule:FILE} spec, with its {@code warmup:}/{@code cooldown:}
     * decorators and {@code ,allow=model|sampler|steps} flags.
     *
     * @throws ScheduleException if the file cannot be read or is not a schedule
     * @throws IllegalArgumentException if the spec is malformed
     */
    public static CachePolicy parseSpec(String spec) {
        String s = spec.strip();
        List<String[]> decorators = new ArrayList<>();
        int at = decorators(s, decorators);
        if (!s.startsWith("schedule:", at)) {
            throw new IllegalArgumentException("not a schedule spec: " + spec);
        }
        if (decorators.size() > CachePolicies.MAX_NESTING) {
            throw new IllegalArgumentException("warmup:/cooldown: nest more than " + CachePolicies.MAX_NESTING + " deep");
        }
        String[] parts = s.substring(at + "schedule:".length()).split(",", -1);
        String file = parts[0].strip();
        if (file.isEmpty()) {
            throw new IllegalArgumentException("schedule: needs a file, like schedule:tuned.json");
        }
        Set<SchedulePolicy.Allow> allowed = EnumSet.noneOf(SchedulePolicy.Allow.class);
        for (int i = 1; i < parts.length; i++) {
            String p = parts[i].strip();
            String what = p.startsWith("allow=") ? p.substring(6) : "";
            try {
                allowed.add(SchedulePolicy.Allow.valueOf(what.toUpperCase(Locale.ROOT)));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("schedule: takes a file and allow=model, allow=sampler or allow=steps, got \""
                        + p + "\" in " + spec, e);
            }
        }
        CachePolicy policy = new SchedulePolicy(read(Path.of(file)), file, allowed);
        for (int i = decorators.size() - 1; i >= 0; i--) {
            String[] w = decorators.get(i);
            int k;
            try {
                k = Integer.parseInt(w[1]);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(w[0] + " step count " + w[1] + " is too large", e);
            }
            if (k < 1) {
                throw new IllegalArgumentException(w[0] + " step count must be >= 1, got " + k);
            }
            policy = w[0].equals("warmup") ? WarmupCooldown.warmup(k, policy) : WarmupCooldown.cooldown(k, policy);
        }
        return policy;
    }

    /**
     * Reads a schedule file.
     *
     * @throws ScheduleException ({@code MALFORMED}) if it cannot be read or is not a schedule
     */
    public static CacheSchedule read(Path file) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            String why = Inputs.problem(file) != null ? Inputs.problem(file) : Outputs.reason(e);
            throw new ScheduleException(ScheduleException.Reason.MALFORMED, "cannot read schedule " + file + ": " + why, e);
        }
        return parse(text, file.toString());
    }

    /**
     * Parses a schedule from its JSON text.
     *
     * @param name the file name, for messages
     * @throws ScheduleException ({@code MALFORMED}) naming the problem
     */
    public static CacheSchedule parse(String text, String name) {
        JsonObject o;
        try (JsonReader reader = new JsonReader(new StringReader(text))) {
            JsonElement root = new Gson().getAdapter(JsonElement.class).read(reader);
            if (reader.peek() != JsonToken.END_DOCUMENT) {
                throw malformed(name, "text after the JSON object");
            }
            if (root == null || !root.isJsonObject()) {
                throw malformed(name, "the top level is not a JSON object");
            }
            o = root.getAsJsonObject();
        } catch (IOException | JsonParseException | IllegalStateException e) {
            throw new ScheduleException(ScheduleException.Reason.MALFORMED, "schedule " + name + " is not valid JSON: "
                    + JsonErrors.syntax(e), e);
        }
        unknownFields(name, "", o, TOP);
        if (!FORMAT.equals(string(name, o, "format"))) {
            throw malformed(name, "\"format\" must be \"" + FORMAT + "\"");
        }
        if (integer(name, o, "format_version") != FORMAT_VERSION) {
            throw malformed(name, "\"format_version\" " + shown(o.get("format_version")) + " is not " + FORMAT_VERSION);
        }
        try {
            CacheSchedule.Target target = new CacheSchedule.Target(string(name, o, "model"), string(name, o, "sampler"),
                    integer(name, o, "steps"));
            CacheSchedule.Forecast forecast = forecast(name, object(name, o, "forecast"));
            boolean separate = bool(name, o, "separate_guidance_halves");
            JsonArray blocks = array(name, o, "blocks");
            List<String> branches = null;
            int[][][] steps = new int[blocks.size()][][];
            for (JsonElement e : blocks) {
                if (!e.isJsonObject()) {
                    throw malformed(name, "every entry of \"blocks\" must be an object");
                }
                JsonObject b = e.getAsJsonObject();
                int block = integer(name, b, "block");
                if (block < 0) {
                    throw malformed(name, "block index " + block + " is negative");
                }
                if (block >= steps.length) {
                    throw new ScheduleException(ScheduleException.Reason.UNKNOWN_BLOCK, "schedule " + name + " lists block "
                            + block + " among " + steps.length + " blocks (they must be numbered 0.." + (steps.length - 1) + ")");
                }
                if (steps[block] != null) {
                    throw malformed(name, "block " + block + " is listed twice");
                }
                List<String> names = new ArrayList<>(b.keySet());
                names.remove("block");
                if (branches == null) {
                    branches = names;
                } else if (!branches.equals(names)) {
                    throw malformed(name, "block " + block + " lists branches " + names + ", block 0 lists " + branches);
                }
                steps[block] = new int[names.size()][];
                for (int r = 0; r < names.size(); r++) {
                    steps[block][r] = ints(name, b, names.get(r), "block " + block + " " + names.get(r));
                }
            }
            if (branches == null) {
                throw malformed(name, "\"blocks\" is empty");
            }
            return new CacheSchedule(target, branches, steps, forecast, separate);
        } catch (ScheduleException e) {
            throw e.reason() == ScheduleException.Reason.MALFORMED && !e.getMessage().startsWith("schedule " + name)
                    ? new ScheduleException(e.reason(), "schedule " + name + ": " + e.getMessage(), e) : e;
        }
    }

    private static CacheSchedule.Forecast forecast(String name, JsonObject f) {
        String kind = string(name, f, "kind");
        return switch (kind) {
            case "reuse" -> {
                unknownFields(name, "forecast.", f, Set.of("kind"));
                yield CacheSchedule.Forecast.REUSE;
            }
            case "taylorseer" -> {
                unknownFields(name, "forecast.", f, Set.of("kind", "order"));
                yield CacheSchedule.Forecast.taylorSeer(integer(name, f, "order"));
            }
            case "hicache" -> {
                unknownFields(name, "forecast.", f, Set.of("kind", "order", "sigma"));
                yield CacheSchedule.Forecast.hiCache(integer(name, f, "order"), number(name, f, "sigma"));
            }
            default -> throw malformed(name, "forecast kind \"" + shown(kind) + "\" is not reuse, taylorseer or hicache");
        };
    }

    /** The JSON of a schedule (what {@link #parse} reads back). */
    public static Map<String, Object> json(CacheSchedule s) {
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("format", FORMAT);
        o.put("format_version", FORMAT_VERSION);
        o.put("model", s.target().model());
        o.put("sampler", s.target().sampler());
        o.put("steps", s.target().steps());
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("kind", s.forecast().kind().name().toLowerCase(Locale.ROOT));
        if (s.forecast().kind() != CacheSchedule.ForecastKind.REUSE) {
            f.put("order", s.forecast().order());
        }
        if (s.forecast().kind() == CacheSchedule.ForecastKind.HICACHE) {
            f.put("sigma", s.forecast().sigma());
        }
        o.put("forecast", f);
        o.put("separate_guidance_halves", s.separateGuidanceHalves());
        List<Map<String, Object>> blocks = new ArrayList<>();
        for (int b = 0; b < s.depth(); b++) {
            Map<String, Object> block = new LinkedHashMap<>();
            block.put("block", b);
            for (int r = 0; r < s.branches().size(); r++) {
                block.put(s.branches().get(r), s.computeSteps(b, r));
            }
            blocks.add(block);
        }
        o.put("blocks", blocks);
        return o;
    }

    /** Writes a schedule file (atomically, like every CLI output). */
    public static void write(CacheSchedule s, Path file, String option) {
        Outputs.writeJson(json(s), file, option);
    }

    private static void unknownFields(String name, String prefix, JsonObject o, Set<String> known) {
        for (String k : o.keySet()) {
            if (!known.contains(k)) {
                throw malformed(name, "unknown field \"" + prefix + shown(k) + "\" (known: " + known + ")");
            }
        }
    }

    private static JsonElement field(String name, JsonObject o, String key) {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            throw malformed(name, "field \"" + key + "\" is missing");
        }
        return e;
    }

    private static String string(String name, JsonObject o, String key) {
        JsonElement e = field(name, o, key);
        if (!(e instanceof JsonPrimitive p) || !p.isString()) {
            throw malformed(name, "field \"" + key + "\" must be a string, got " + shown(e));
        }
        return p.getAsString();
    }

    private static boolean bool(String name, JsonObject o, String key) {
        JsonElement e = field(name, o, key);
        if (!(e instanceof JsonPrimitive p) || !p.isBoolean()) {
            throw malformed(name, "field \"" + key + "\" must be true or false, got " + shown(e));
        }
        return p.getAsBoolean();
    }

    private static double number(String name, JsonObject o, String key) {
        JsonElement e = field(name, o, key);
        if (!(e instanceof JsonPrimitive p) || !p.isNumber()) {
            throw malformed(name, "field \"" + key + "\" must be a number, got " + shown(e));
        }
        return p.getAsDouble();
    }

    private static int integer(String name, JsonObject o, String key) {
        return integer(name, field(name, o, key), "field \"" + key + "\"");
    }

    private static int integer(String name, JsonElement e, String what) {
        if (e instanceof JsonPrimitive p && p.isNumber()) {
            double v = p.getAsDouble();
            if (v == Math.rint(v) && Math.abs(v) <= Integer.MAX_VALUE) {
                return (int) v;
            }
        }
        throw malformed(name, what + " must be an integer, got " + shown(e));
    }

    private static JsonObject object(String name, JsonObject o, String key) {
        JsonElement e = field(name, o, key);
        if (!e.isJsonObject()) {
            throw malformed(name, "field \"" + key + "\" must be an object, got " + shown(e));
        }
        return e.getAsJsonObject();
    }

    private static JsonArray array(String name, JsonObject o, String key) {
        JsonElement e = field(name, o, key);
        if (!e.isJsonArray()) {
            throw malformed(name, "field \"" + key + "\" must be an array, got " + shown(e));
        }
        return e.getAsJsonArray();
    }

    private static int[] ints(String name, JsonObject o, String key, String what) {
        JsonArray a = array(name, o, key);
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = integer(name, a.get(i), what + "[" + i + "]");
        }
        return out;
    }

    /** A value for a message, cut short: a file can hold megabytes where one entry is expected. */
    private static String shown(Object value) {
        String text = String.valueOf(value);
        return text.length() <= 60 ? text : text.substring(0, 60) + "... (" + text.length() + " characters)";
    }

    private static ScheduleException malformed(String name, String message) {
        return new ScheduleException(ScheduleException.Reason.MALFORMED, "schedule " + name + ": " + message);
    }
}
