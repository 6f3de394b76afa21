package dev.fora.djl;

import dev.fora.core.model.TextEmbeddings;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;

/**
 * Reads text embeddings for PixArt-α models from a NumPy {@code .npz} archive (what
 * {@code numpy.savez} / {@code numpy.savez_compressed} and {@code fora_tools.text_embeddings.save}
 * write):
 * <ul>
 * <li>{@code embeddings}: float32 (float16 and float64 accepted), {@code [N, tokens, width]}, one
 *     row per prompt (PixArt-α: {@code [N, 120, 4096]} of T5-XXL);</li>
 * <li>{@code mask} (optional): bool or integer, {@code [N, tokens]}, non-zero for a real token;
 *     without it every token is real. Every row needs at least one real token.</li>
 * </ul>
 * A single {@code .npy} file is read as the embeddings with no mask. {@link #write} writes such
 * an archive ({@code fora encode}).
 */
public final class TextEmbeddingFiles {

    /** Largest array read, in values (a 2 GiB float32 array). */
    public static final long MAX_VALUES = Integer.MAX_VALUE / 4;

    private static final byte[] NPY_MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*('[^']*'|[^,}]+)");
    private static final Pattern SIMPLE_DTYPE = Pattern.compile("'([<>|=])([a-z])(\\d+)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    private TextEmbeddingFiles() {
    }

    /**
     * Reads a {@code .npz} (or {@code .npy}) file of text embeddings.
     *
     * @throws IOException if the file cannot be read
     * @throws IllegalArgumentException naming the file and the problem if it is not such an archive,
     *     an array has an unsupported type or shape, the mask does not fit the embeddings, a row has
     *     no real token, or a value is not finite
     */
    public static TextEmbeddings read(Path file) throws IOException {
        Map<String, NpyArray> arrays = new HashMap<>();
        byte[] head;
        try (InputStream in = Files.newInputStream(file)) {
            head = in.readNBytes(6);
        }
        if (Arrays.equals(head, NPY_MAGIC)) {
            try (InputStream in = Files.newInputStream(file)) {
                arrays.put("embeddings", NpyArray.read(in, file + ""));
            }
        } else {
            try (ZipInputStream zip = new ZipInputStream(Files.newInputStream(file))) {
                ZipEntry e;
                while ((e = zip.getNextEntry()) != null) {
                    String name = e.getName().endsWith(".npy") ? e.getName().substring(0, e.getName().length() - 4) : e.getName();
                    if (name.equals("embeddings") || name.equals("mask")) {
                        arrays.put(name, NpyArray.read(zip, file + ":" + e.getName()));
                    }
                }
            } catch (java.util.zip.ZipException e) {
                throw new IllegalArgumentException(file + " is not a .npz archive (" + e.getMessage() + ")", e);
            }
            if (arrays.isEmpty() && !isZip(head)) {
                throw new IllegalArgumentException(file + " is neither a .npz archive nor a .npy array");
            }
        }
        NpyArray emb = arrays.get("embeddings");
        if (emb == null) {
            throw new IllegalArgumentException(file + " has no array named \"embeddings\" (expected [N, tokens, width] float32"
                    + " and optionally \"mask\" [N, tokens])");
        }
        if (emb.shape.length != 3 || emb.shape[0] < 1 || emb.shape[1] < 1 || emb.shape[2] < 1) {
            throw new IllegalArgumentException(file + ": embeddings must be [N, tokens, width], got " + Arrays.toString(emb.shape));
        }
        if (emb.kind != 'f') {
            throw new IllegalArgumentException(file + ": embeddings must be floating point, got dtype " + emb.descr);
        }
        int n = (int) emb.shape[0];
        int tokens = (int) emb.shape[1];
        int width = (int) emb.shape[2];
        float[] values = emb.floats();
        boolean[] mask = new boolean[n * tokens];
        NpyArray m = arrays.get("mask");
        if (m == null) {
            Arrays.fill(mask, true);
        } else {
            if (!Arrays.equals(m.shape, new long[] {n, tokens})) {
                throw new IllegalArgumentException(file + ": the mask is " + Arrays.toString(m.shape) + " but the embeddings are "
                        + n + " rows of " + tokens + " tokens, so it must be [" + n + ", " + tokens + "]");
            }
            float[] mv = m.floats();
            for (int i = 0; i < mask.length; i++) {
                mask[i] = mv[i] != 0f;
            }
        }
        try {
            return new TextEmbeddings(tokens, width, values, mask);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Writes text embeddings as a {@code .npz} archive that {@link #read} and {@code numpy.load}
     * read: {@code embeddings} float32 {@code [N, tokens, width]} and {@code mask} bool
     * {@code [N, tokens]}.
     *
     * @throws IOException if the file cannot be written
     */
    public static void write(Path file, TextEmbeddings embeddings) throws IOException {
        try (java.io.OutputStream out = Files.newOutputStream(file)) {
            write(out, embeddings);
        }
    }

    /** {@link #write(Path, TextEmbeddings)} to a stream, which is left open. */
    public static void write(java.io.OutputStream out, TextEmbeddings embeddings) throws IOException {
        int n = embeddings.size();
        float[] values = embeddings.values();
        ByteBuffer emb = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        emb.asFloatBuffer().put(values);
        boolean[] mask = embeddings.mask();
        byte[] m = new byte[mask.length];
        for (int i = 0; i < m.length; i++) {
            m[i] = (byte) (mask[i] ? 1 : 0);
        }
        java.util.zip.ZipOutputStream zip = new java.util.zip.ZipOutputStream(out);
        writeNpy(zip, "embeddings.npy", "<f4", "(" + n + ", " + embeddings.tokens() + ", " + embeddings.width() + ")",
                emb.array());
        writeNpy(zip, "mask.npy", "|b1", "(" + n + ", " + embeddings.tokens() + ")", m);
        zip.finish();
    }

    private static void writeNpy(java.util.zip.ZipOutputStream zip, String name, String descr, String shape, byte[] data)
            throws IOException {
        StringBuilder header = new StringBuilder("{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape
                + ", }");
        // NumPy pads the header with spaces so the data starts at a multiple of 64 bytes.
        while ((NPY_MAGIC.length + 4 + header.length() + 1) % 64 != 0) {
            header.append(' ');
        }
        header.append('\n');
        zip.putNextEntry(new ZipEntry(name));
        zip.write(NPY_MAGIC);
        zip.write(new byte[] {1, 0, (byte) (header.length() & 0xff), (byte) (header.length() >>> 8)});
        zip.write(header.toString().getBytes(StandardCharsets.ISO_8859_1));
        zip.write(data);
        zip.closeEntry();
    }

    /** IEEE 754 half precision to float (Java 17 has no {@code Float.float16ToFloat}). */
    static float halfToFloat(short h) {
        int bits = h & 0xffff;
        int sign = (bits & 0x8000) << 16;
        int exp = (bits >>> 10) & 0x1f;
        int mant = bits & 0x3ff;
        if (exp == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | mant << 13);
        }
        if (exp == 0) {
            float v = mant * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | (exp + 112) << 23 | mant << 13);
    }

    private static String abbreviate(String text) {
        return text.length() <= 40 ? text : text.substring(0, 37) + "...";
    }

    private static boolean isZip(byte[] head) {
        return head.length >= 2 && head[0] == 'P' && head[1] == 'K';
    }

    /** One {@code .npy} array: its dtype and shape, and its raw data. */
    private record NpyArray(String descr, char kind, int size, ByteOrder order, long[] shape, byte[] data) {

        static NpyArray read(InputStream in, String where) throws IOException {
            byte[] magic = in.readNBytes(6);
            if (!Arrays.equals(magic, NPY_MAGIC)) {
                throw new IllegalArgumentException(where + " is not a .npy array");
            }
            int major = in.read();
            in.read();
            int headerLen;
            if (major == 1) {
                byte[] b = in.readNBytes(2);
                headerLen = (b[0] & 0xff) | (b[1] & 0xff) << 8;
            } else if (major == 2 || major == 3) {
                byte[] b = in.readNBytes(4);
                headerLen = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getInt();
            } else {
                throw new IllegalArgumentException(where + ": .npy format version " + major + " is not supported");
            }
            if (headerLen < 0 || headerLen > 1 << 20) {
                throw new IllegalArgumentException(where + ": bad .npy header length " + headerLen);
            }
            String header = new String(in.readNBytes(headerLen), major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
            Matcher d = DESCR.matcher(header);
            Matcher f = FORTRAN.matcher(header);
            Matcher s = SHAPE.matcher(header);
            if (!d.find() || !f.find() || !s.find()) {
                throw new IllegalArgumentException(where + ": not a .npy header (it lacks 'descr', 'fortran_order' or 'shape')");
            }
            Matcher simple = SIMPLE_DTYPE.matcher(d.group(1).strip());
            if (!simple.matches()) {
                throw new IllegalArgumentException(where + ": dtype " + abbreviate(d.group(1).strip())
                        + " is not supported (float16/32/64, bool or integer)");
            }
            if (f.group(1).equals("True")) {
                throw new IllegalArgumentException(where + ": Fortran-ordered arrays are not supported (save a C-ordered array)");
            }
            char kind = simple.group(2).charAt(0);
            int size = Integer.parseInt(simple.group(3));
            String descr = simple.group(1) + simple.group(2) + simple.group(3);
            boolean ok = switch (kind) {
                case 'f' -> size == 2 || size == 4 || size == 8;
                case 'b' -> size == 1;
                case 'i', 'u' -> size == 1 || size == 2 || size == 4 || size == 8;
                default -> false;
            };
            if (!ok) {
                throw new IllegalArgumentException(where + ": dtype " + descr + " is not supported (float16/32/64, bool or integer)");
            }
            String[] dims = s.group(1).split(",");
            long[] shape;
            try {
                shape = Arrays.stream(dims).map(String::strip).filter(x -> !x.isEmpty()).mapToLong(Long::parseLong).toArray();
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(where + ": shape (" + abbreviate(s.group(1)) + ") is not a list of integers");
            }
            long count = 1;
            for (long dim : shape) {
                if (dim < 0) {
                    throw new IllegalArgumentException(where + ": shape " + Arrays.toString(shape) + " has a negative dimension");
                }
                if (dim > 0 && count > MAX_VALUES / dim) {
                    throw new IllegalArgumentException(where + ": shape " + Arrays.toString(shape) + " is too large");
                }
                count *= dim;
            }
            byte[] data = readFully(in, count * size, where);
            ByteOrder order = d.group(1).equals(">") ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
            return new NpyArray(descr, kind, size, order, shape, data);
        }

        private static byte[] readFully(InputStream in, long bytes, String where) throws IOException {
            ByteArrayOutputStream out = new ByteArrayOutputStream((int) Math.min(bytes, 1 << 20));
            byte[] buf = new byte[1 << 16];
            long left = bytes;
            while (left > 0) {
                int r = in.read(buf, 0, (int) Math.min(buf.length, left));
                if (r < 0) {
                    throw new IllegalArgumentException(where + ": the array data is truncated (" + (bytes - left) + " of " + bytes
                            + " bytes)");
                }
                out.write(buf, 0, r);
                left -= r;
            }
            return out.toByteArray();
        }

        /** The values as floats (bool: 0 or 1). */
        float[] floats() {
            ByteBuffer b = ByteBuffer.wrap(data).order(order);
            int n = data.length / size;
            float[] out = new float[n];
            for (int i = 0; i < n; i++) {
                out[i] = switch (kind) {
                    case 'f' -> size == 2 ? halfToFloat(b.getShort()) : size == 4 ? b.getFloat() : (float) b.getDouble();
                    case 'b' -> b.get() != 0 ? 1f : 0f;
                    case 'u' -> size == 1 ? b.get() & 0xff : size == 2 ? b.getShort() & 0xffff : size == 4
                            ? (float) (b.getInt() & 0xffffffffL) : (float) b.getLong();
                    default -> size == 1 ? b.get() : size == 2 ? b.getShort() : size == 4 ? b.getInt() : (float) b.getLong();
                };
            }
            return out;
        }
    }
}
