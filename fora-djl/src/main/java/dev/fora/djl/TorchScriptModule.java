package dev.fora.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.IValueUtils;
import ai.djl.pytorch.jni.JniUtils;
import dev.fora.djl.ModelLoadException.Reason;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * One loaded TorchScript file and calls of its methods.
 *
 * <p>Arguments are borrowed (never closed); every result is created in the manager passed
 * to the call, and every intermediate {@link IValue} is closed before the call returns. The
 * module may be called from many threads at once (inference only).
 */
final class TorchScriptModule implements AutoCloseable {

    private final Path file;
    private final PtNDManager manager;
    private final PtSymbolBlock block;
    private final Set<String> methods;
    private final boolean graphOptimizer;
    /** Threads on which the graph executor setting has been applied (it is thread-local in libtorch). */
    private final ThreadLocal<Boolean> configured = ThreadLocal.withInitial(() -> Boolean.FALSE);

    private TorchScriptModule(Path file, PtNDManager manager, PtSymbolBlock block, Set<String> methods,
            boolean graphOptimizer) {
        this.file = file;
        this.manager = manager;
        this.block = block;
        this.methods = methods;
        this.graphOptimizer = graphOptimizer;
    }

    /**
     * Loads a TorchScript file into a new sub-manager of {@code parent} and checks that it
     * exports {@code requiredMethods}.
     */
    static TorchScriptModule load(NDManager parent, Path file, List<String> requiredMethods, boolean graphOptimizer)
            throws ModelLoadException {
        PtNDManager manager = (PtNDManager) parent.newSubManager();
        manager.setName("torchscript:" + file.getFileName());
        try {
            PtSymbolBlock block;
            try {
                // on a GPU the weights are mapped to the manager's device; on the CPU they load where they are
                block = JniUtils.loadModule(manager, file, manager.getDevice().isGpu(), new String[0], new String[0], false);
            } catch (RuntimeException e) {
                throw new ModelLoadException(Reason.CORRUPT_FILE, file, "not a loadable TorchScript module: " + e.getMessage(),
                        e);
            }
            Set<String> names = new HashSet<>(Arrays.asList(JniUtils.getMethodNames(block)));
            for (String m : requiredMethods) {
                if (!m.equals("forward") && !names.contains(m)) {
                    throw new ModelLoadException(Reason.CORRUPT_FILE, file, "the TorchScript module does not export method '"
                            + m + "' (it has " + names + "); re-export it with fora_tools.export");
                }
            }
            return new TorchScriptModule(file, manager, block, names, graphOptimizer);
        } catch (ModelLoadException | RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    Path file() {
        return file;
    }

    Set<String> methods() {
        return methods;
    }

    /**
     * Runs {@code method} with the given arguments ({@link NDArray}s, {@link Long}s, and lists as
     * {@code PtNDArray[]}, {@code double[]} or {@code long[]}) and
     * returns its tensor outputs (a tuple is flattened) created in {@code out}.
     */
    NDArray[] call(String method, NDManager out, Object... args) {
        if (!configured.get()) {
            JniUtils.setGraphExecutorOptimize(graphOptimizer);
            configured.set(Boolean.TRUE);
        }
        IValue[] in = new IValue[args.length];
        try {
            for (int i = 0; i < args.length; i++) {
                Object a = args[i];
                if (a instanceof PtNDArray p) {
                    in[i] = IValue.from(p);
                } else if (a instanceof Long l) {
                    in[i] = IValue.from(l.longValue());
                } else if (a instanceof PtNDArray[] list) {
                    in[i] = IValue.listFrom(list);
                } else if (a instanceof double[] list) {
                    in[i] = IValue.listFrom(list);
                } else if (a instanceof long[] list) {
                    in[i] = IValue.listFrom(list);
                } else if (a instanceof NDArray nd) {
                    throw new IllegalArgumentException("argument " + i + " of " + method + " is a " + nd.getClass().getName()
                            + ", not a PyTorch NDArray");
                } else {
                    throw new IllegalArgumentException("argument " + i + " of " + method + " has unsupported type " + a);
                }
            }
            try (IValue result = method.equals("forward") ? block.forward(in) : IValueUtils.runMethod(block, method, in)) {
                PtNDManager target = (PtNDManager) out;
                if (result.isTensor()) {
                    return new NDArray[] {result.toTensor(target)};
                }
                if (result.isTuple()) {
                    IValue[] parts = result.toIValueTuple();
                    NDArray[] arrays = new NDArray[parts.length];
                    try {
                        for (int i = 0; i < parts.length; i++) {
                            arrays[i] = parts[i].toTensor(target);
                        }
                    } finally {
                        for (IValue p : parts) {
                            p.close();
                        }
                    }
                    return arrays;
                }
                throw new IllegalStateException(file + ": method " + method + " returned " + result.getType()
                        + ", expected a tensor or a tuple of tensors");
            }
        } finally {
            for (IValue v : in) {
                if (v != null) {
                    v.close();
                }
            }
        }
    }

    /** A new sub-manager of the module's manager, for the arrays of one call sequence. */
    NDManager newScope() {
        return manager.newSubManager();
    }

    /** Closes the module and its manager. Idempotent. */
    @Override
    public void close() {
        manager.close();
    }

    /**
     * The shape of the first parameter whose name ends with {@code suffix} (a wrapper module
     * prefixes the names, e.g. {@code dit.}), if the module has one.
     */
    java.util.Optional<long[]> parameterShape(String suffix) {
        try (PtNDManager scope = (PtNDManager) manager.newSubManager()) {
            for (NDArray p : JniUtils.moduleGetParams(block, scope)) {
                if (p.getName().endsWith(suffix)) {
                    return java.util.Optional.of(p.getShape().getShape());
                }
            }
        }
        return java.util.Optional.empty();
    }
}
