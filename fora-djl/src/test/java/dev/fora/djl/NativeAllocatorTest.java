package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class NativeAllocatorTest {

    @Test
    void theEnvironmentsSettingsAreNamedAndWin() {
        assertThat(NativeAllocator.environmentSettings(Map.of("PATH", "/bin"))).isNull();
        assertThat(NativeAllocator.environmentSettings(Map.of("MALLOC_TOP_PAD_", "200000000", "MALLOC_MMAP_MAX_", "0",
                "HOME", "/root"))).isEqualTo("MALLOC_MMAP_MAX_=0 MALLOC_TOP_PAD_=200000000");
        assertThat(NativeAllocator.environmentSettings(Map.of("LD_PRELOAD", "/usr/lib/libtcmalloc_minimal.so.4",
                "TCMALLOC_RELEASE_RATE", "0"))).isEqualTo("LD_PRELOAD=/usr/lib/libtcmalloc_minimal.so.4 TCMALLOC_RELEASE_RATE=0");
        assertThat(NativeAllocator.environmentSettings(Map.of("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")))
                .isEqualTo("GLIBC_TUNABLES=glibc.malloc.hugetlb=1");
    }

    /**
     * The point of the setting, in JVMs of their own (it is process-wide): a freed 8 MiB block (a
     * libtorch temporary's size) stays mapped and is reused, where glibc's defaults unmap it and
     * fault a new one in page by page (2,048 faults here, against about 10 kept).
     */
    @Test
    void aFreedBlockIsReusedWithoutPageFaults() throws Exception {
        assumeTrue(Files.isReadable(Path.of("/proc/thread-self/stat")), "Linux only");
        assumeTrue(NativeAllocator.environmentSettings(System.getenv()) == null, "the environment sets the allocator");
        List<String> kept = run("keep");
        assumeTrue(kept.contains("applied true"), "not glibc");
        long defaultFaults = faults(run("default"));
        assumeTrue(defaultFaults > 1000, "glibc's defaults do not fault here (" + defaultFaults + "; huge pages?)");
        assertThat(faults(kept)).as("faults with freed memory kept, against %d under the defaults", defaultFaults)
                .isLessThan(defaultFaults / 10);
    }

    private static long faults(List<String> lines) {
        return Long.parseLong(lines.stream().filter(l -> l.startsWith("faults ")).findFirst()
                .orElseThrow(() -> new AssertionError("no fault count in " + lines)).substring(7));
    }

    private static List<String> run(String mode) throws Exception {
        Process p = new ProcessBuilder(ForkedJvm.command("64m", AllocatorFaultsMain.class, mode)).redirectErrorStream(true)
                .start();
        assertThat(p.waitFor(1, TimeUnit.MINUTES)).as("the forked JVM finished").isTrue();
        List<String> lines = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).lines().toList();
        assertThat(p.exitValue()).as("exit code; output %s", lines).isZero();
        return lines;
    }
}
