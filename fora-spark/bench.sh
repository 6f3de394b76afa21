#!/usr/bin/env bash
# Requests per second of the Spark job on this machine in local mode, with 1 and 2 executor cores
# (local[1], local[2]) and one libtorch thread per task, on the shipped model.
#
#   fora-spark/bench.sh [REQUESTS] [STEPS] [POLICY] [ROUNDS]      (defaults: 400 50 fora:3 3)
#
# It builds the job jar, then runs it the way spark-submit does: the job jar plus Spark's own jars
# on the class path, Spark's Java 17 module options, the master given with --master, 4 partitions
# per core. Each round runs local[1] then local[2] in fresh JVMs; the table gives the median over
# the rounds of the generating action's wall time (the model is loaded before it, Spark's start-up
# is not counted). Spark's logs go to files in a temporary directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-400}
steps=${2:-50}
policy=${3:-fora:3}
rounds=${4:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$root"
# The reactor builds the job jar; the last module (fora-spark) writes the class path of its provided (Spark) jars.
if ! mvn -B -q -pl fora-spark -am package dependency:build-classpath -DskipTests \
        -Dmdep.includeScope=provided -Dmdep.outputFile="$work/spark.classpath" > "$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    exit 1
fi
classpath="$root/fora-spark/target/fora-spark.jar:$(cat "$work/spark.classpath")"

# Spark's launcher knows the --add-opens flags it needs on Java 17; ask it rather than copy them.
cat > "$work/ModuleOptions.java" <<'JAVA'
public class ModuleOptions {
    public static void main(String[] args) {
        System.out.println(org.apache.spark.launcher.JavaModuleOptions.defaultModuleOptions());
    }
}
JAVA
module_options=$(java -cp "$classpath" "$work/ModuleOptions.java")

{
    echo "id,label,seed,policy,sampler,steps,cfg"
    for ((i = 0; i < n; i++)); do
        printf 'r%05d,%d,%d,%s,ddim,%d,1.5\n' "$i" $((i % 10)) "$i" "$policy" "$steps"
    done
} > "$work/requests.csv"

echo "requests: $n (DDIM-$steps, $policy, CFG 1.5, shipped model); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((round = 1; round <= rounds; round++)); do
    for cores in 1 2; do
        run="$work/run-$round-$cores"
        # shellcheck disable=SC2086
        if ! java $module_options -Xmx2g -Dai.djl.pytorch.num_threads=1 -Dai.djl.pytorch.num_interop_threads=1 \
                -Dfora.cache.dir="$work/cache" -cp "$classpath" dev.fora.spark.SparkGenerate --master "local[$cores]" \
                --requests "$work/requests.csv" --out "$run" --partitions $((4 * cores)) \
                > "$run.txt" 2> "$run.log" || ! grep -q "^requests  *$n: $n ok, 0 errors" "$run.txt"; then
            cat "$run.txt" "$run.log" >&2
            exit 1
        fi
        seconds=$(awk '/^wall time /{print $3}' "$run.txt")
        echo "round $round, local[$cores]: $seconds s"
        echo "$seconds" >> "$work/seconds-$cores"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| executor cores | partitions | median wall s | requests/s | ms per request x cores |"
echo "|--:|--:|--:|--:|--:|"
for cores in 1 2; do
    sort -g "$work/seconds-$cores" | awk -v c="$cores" -v n="$n" '{s[NR] = $1}
        END {m = NR % 2 ? s[(NR + 1) / 2] : (s[NR / 2] + s[NR / 2 + 1]) / 2;
             printf "| %d | %d | %.1f | %.2f | %.1f |\n", c, 4 * c, m, n / m, 1000 * m * c / n}'
done
