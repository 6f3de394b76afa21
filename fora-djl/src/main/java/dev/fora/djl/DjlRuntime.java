package dev.fora.djl;

/**
 * Settings DJL reads when its engine starts, applied before any DJL class is used.
 *
 * <p>{@code ai.djl.offline} defaults to {@code true}: the native libtorch comes from the
 * {@code pytorch-native-cpu} jar on the classpath and DJL must not probe the network. Set the
 * property to {@code false} yourself to let DJL download natives. Thread counts are DJL's
 * {@code ai.djl.pytorch.num_threads} / {@code ai.djl.pytorch.num_interop_threads} properties
 * (global, read once when the engine starts).
 */
final class DjlRuntime {

    private DjlRuntime() {
    }

    static void configure() {
        if (System.getProperty("ai.djl.offline") == null && System.getenv("DJL_OFFLINE") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
    }
}
